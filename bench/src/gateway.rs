//! `dispatch-bench gateway`: starts the real `dispatch-gateway` (which starts
//! its own `dispatch-broker`) on loopback and measures the whole path client,
//! gateway, broker, PTY and back, each figure beside a baseline measured in
//! the same run:
//!
//! - output throughput of `cat` of a generated file through a WebSocket
//!   viewer that acknowledges, against a plain read loop on a PTY running the
//!   same `cat`;
//! - keystroke echo round trip (`stty raw -echo; cat` echoes every byte)
//!   against a bare loopback WebSocket echo server and a bare PTY echo;
//! - gateway memory per idle attached viewer (RSS before and after);
//! - many concurrent viewers attached to one session, each receiving a marker
//!   line, then detached, with the gateway's file descriptors back to
//!   baseline.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dispatch_testkit::{announce, launch};
use futures::{SinkExt, StreamExt};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const KEY: &str = "bench-key-6c1e9a40f2d7b358";
/// Limit for anything that waits on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// A held viewer acknowledges after this many unacknowledged bytes (the
/// protocol asks for at least every 128 KiB).
const ACK_EVERY: u64 = 64 * 1024;
/// Viewers connecting at once.
const CONNECT_CONCURRENCY: usize = 64;

/// Options of the gateway benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Megabytes of `cat` output pushed through for the throughput figure.
    #[arg(long, default_value_t = 100)]
    mb: u64,
    /// Keystrokes measured for the echo figure.
    #[arg(long, default_value_t = 1000)]
    keystrokes: usize,
    /// Idle viewers attached for the memory figure.
    #[arg(long, default_value_t = 500)]
    idle_viewers: usize,
    /// Concurrent viewers held on one session (at least `--idle-viewers`).
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    /// KiB the throughput viewer receives between acknowledgements (the
    /// protocol asks for at most 128).
    #[arg(long, default_value_t = 64)]
    ack_kib: u64,
    /// A short run: 20 MB, 300 keystrokes, 100 idle and 200 concurrent viewers.
    #[arg(long)]
    quick: bool,
    /// The dispatch-gateway binary (default: the one beside this executable).
    #[arg(long, env = "DISPATCH_GATEWAY_BIN")]
    gateway_bin: Option<PathBuf>,
}

impl Args {
    fn apply_quick(&mut self) {
        if self.quick {
            self.mb = 20;
            self.keystrokes = 300;
            self.idle_viewers = 100;
            self.viewers = 200;
        }
        self.viewers = self.viewers.max(self.idle_viewers);
    }
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    args.apply_quick();
    let bin = gateway_bin(&args)?;
    check_fd_limit(args.viewers)?;
    let work = tempfile::tempdir()?;
    let file = work.path().join("output.txt");
    let size = write_output_file(&file, args.mb * 1_000_000)?;
    println!(
        "dispatch-bench gateway: {} MB through `cat`, {} keystrokes, {} idle / {} concurrent viewers; gateway {}",
        args.mb,
        args.keystrokes,
        args.idle_viewers,
        args.viewers,
        bin.display()
    );
    let gateway = Gateway::start(&bin).await?;
    println!(
        "gateway pid {} on {}, broker started by the gateway",
        gateway.pid(),
        gateway.addr
    );
    println!();
    println!("| figure | value | baseline (same run) | ratio / overhead | target |");
    println!("| --- | --- | --- | --- | --- |");

    // Throughput.
    let raw = raw_pty_cat(&file).await?;
    let (through, cpu) = gateway_cat(&gateway, &file, args.ack_kib).await?;
    let (raw_rate, gw_rate) = (raw.mb_per_s(), through.mb_per_s());
    println!(
        "| output throughput, `cat` of {:.0} MB to an acknowledging viewer | {gw_rate:.1} MB/s ({:.0} MB in {:.2} s) | raw PTY read loop: {raw_rate:.1} MB/s ({:.2} s) | {:.2}x | >= 0.7x |",
        size as f64 / 1e6,
        through.bytes as f64 / 1e6,
        through.elapsed.as_secs_f64(),
        raw.elapsed.as_secs_f64(),
        gw_rate / raw_rate.max(1e-9)
    );
    println!(
        "| CPU time while the gateway path carried it | gateway {:.2} s, broker {:.2} s, this client {:.2} s (over {:.2} s) | | gateway {:.1} ms per MB | |",
        cpu.gateway,
        cpu.broker,
        cpu.client,
        through.elapsed.as_secs_f64(),
        cpu.gateway * 1000.0 / (through.bytes as f64 / 1e6).max(1e-9)
    );

    // Keystroke echo.
    let mut bare = bare_ws_echo(args.keystrokes).await?;
    let mut pty = raw_pty_echo(args.keystrokes).await?;
    let mut full = gateway_echo(&gateway, args.keystrokes).await?;
    let (b50, b99) = (percentile(&mut bare, 0.5), percentile(&mut bare, 0.99));
    let (p50, p99) = (percentile(&mut pty, 0.5), percentile(&mut pty, 0.99));
    let (g50, g99) = (percentile(&mut full, 0.5), percentile(&mut full, 0.99));
    println!(
        "| keystroke echo over the gateway, p50 / p99 ({} keystrokes) | {} / {} | bare loopback WebSocket echo: {} / {}; bare PTY echo: {} / {} | p99 +{} over the bare WebSocket | <= +1 ms |",
        args.keystrokes,
        ms(g50),
        ms(g99),
        ms(b50),
        ms(b99),
        ms(p50),
        ms(p99),
        ms(g99.saturating_sub(b99))
    );

    // Viewers: memory per idle viewer, then many held at once.
    viewers(&gateway, &args).await?;
    gateway.stop().await;
    Ok(())
}

fn gateway_bin(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &args.gateway_bin {
        return Ok(bin.clone());
    }
    let bin = std::env::current_exe()?.with_file_name("dispatch-gateway");
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p dispatch-gateway -p dispatch-broker) or set DISPATCH_GATEWAY_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// Refuses to start when this process (and so the gateway it starts) cannot
/// open a socket per viewer.
fn check_fd_limit(viewers: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < viewers + 256 => bail!(
            "the open file limit ({soft}) is too low for {viewers} viewers: raise it (ulimit -n {}) or pass --viewers",
            viewers + 1024
        ),
        _ => Ok(()),
    }
}

/// Writes `size` bytes of numbered 100-byte text lines.
fn write_output_file(path: &Path, size: u64) -> anyhow::Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let filler = "abcdefghijklmnopqrstuvwxyz".repeat(4);
    let mut written = 0;
    let mut n = 0u64;
    while written < size {
        // 10 digits, a space, 88 letters, a newline: 100 bytes.
        writeln!(out, "{n:010} {}", &filler[..88])?;
        written += 100;
        n += 1;
    }
    out.flush()?;
    Ok(written)
}

/// A running `dispatch-gateway` with its own broker, in temporary folders.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let sessions = dir.path().join("sessions");
        std::fs::create_dir(&home)?;
        std::fs::create_dir(&sessions)?;
        let mut child = launch::command(bin)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("TERMINAL_KEY", KEY)
            .env("PTY_ROOT", &sessions)
            .env("HOME", &home)
            .env("STATE_DIR", dir.path().join("state"))
            .env("CLAUDE_HOME", home.join(".claude"))
            .env("SHELL", "/bin/sh")
            .env("RUST_LOG", "error")
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let addr =
            launch::announced_addr(&mut child, announce::GATEWAY_LISTENING, DEADLINE).await?;
        let gateway = Self {
            child,
            addr,
            _dir: dir,
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok((200, _)) = self.request("GET", "/readyz", None).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the gateway's broker was not ready within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One HTTP/1.1 request with the bearer key; the status and JSON body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let bearer = format!("Bearer {KEY}");
        let headers = [("Authorization", bearer.as_str())];
        let (status, body) = crate::stack::http(self.addr, method, path, &headers, &body).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
    }

    /// Creates a shell session; returns its id.
    async fn create_session(&self) -> anyhow::Result<String> {
        let body = serde_json::json!({"mode": "shell", "cols": 200, "rows": 50});
        let (status, session) = self.request("POST", "/api/sessions", Some(body)).await?;
        if status != 201 {
            bail!("creating a session: {status} {session}");
        }
        session["id"]
            .as_str()
            .map(str::to_owned)
            .context("no session id")
    }

    async fn end_session(&self, id: &str) {
        let _ = self
            .request("DELETE", &format!("/api/sessions/{id}"), None)
            .await;
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A terminal viewer that acknowledges what it receives.
struct Viewer {
    socket: Socket,
    received: u64,
    acked: u64,
    ack_every: u64,
}

/// What a viewer's socket delivered.
enum Delivery {
    Output(Vec<u8>),
    Control(serde_json::Value),
    Closed,
}

impl Viewer {
    /// Opens a terminal WebSocket on session `id`, authenticated by the
    /// key, and waits for `attached`.
    async fn attach(addr: SocketAddr, id: &str) -> anyhow::Result<Self> {
        let url = format!("ws://{addr}/ws/sessions/{id}?cols=200&rows=50");
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {KEY}"))?,
        );
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        let mut viewer = Self {
            socket,
            received: 0,
            acked: 0,
            ack_every: ACK_EVERY,
        };
        match viewer.next().await? {
            Delivery::Control(value) if value["type"] == "attached" => Ok(viewer),
            _ => bail!("the first message was not `attached`"),
        }
    }

    async fn next(&mut self) -> anyhow::Result<Delivery> {
        loop {
            let message = match self.socket.next().await {
                None => return Ok(Delivery::Closed),
                Some(message) => message?,
            };
            match message {
                Message::Binary(data) => {
                    self.received += data.len() as u64;
                    if self.received - self.acked >= self.ack_every {
                        self.ack().await?;
                    }
                    return Ok(Delivery::Output(data.to_vec()));
                }
                Message::Text(text) => {
                    return Ok(Delivery::Control(serde_json::from_str(&text)?));
                }
                Message::Close(_) => return Ok(Delivery::Closed),
                _ => continue,
            }
        }
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        self.acked = self.received;
        let ack = serde_json::json!({"type": "ack", "bytes": self.received});
        self.socket.send(Message::text(ack.to_string())).await?;
        Ok(())
    }

    async fn type_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket
            .send(Message::binary(text.as_bytes().to_vec()))
            .await?;
        Ok(())
    }

    /// Reads until the output contains `needle`; returns the output bytes read.
    async fn wait_for(&mut self, needle: &[u8]) -> anyhow::Result<u64> {
        tokio::time::timeout(DEADLINE * 5, self.read_until(needle))
            .await
            .with_context(|| format!("no {:?}", String::from_utf8_lossy(needle)))?
    }

    async fn read_until(&mut self, needle: &[u8]) -> anyhow::Result<u64> {
        let mut bytes = 0;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            match self.next().await? {
                Delivery::Output(data) => {
                    bytes += data.len() as u64;
                    tail.extend_from_slice(&data);
                    if memchr::memmem::find(&tail, needle).is_some() {
                        return Ok(bytes);
                    }
                    let keep = tail.len().min(needle.len());
                    tail.drain(..tail.len() - keep);
                }
                Delivery::Control(_) => {}
                Delivery::Closed => bail!("the socket closed"),
            }
        }
    }
}

/// Bytes moved and the time it took.
struct Transfer {
    bytes: u64,
    elapsed: Duration,
}

impl Transfer {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn pty_size() -> PtySize {
    PtySize {
        rows: 50,
        cols: 200,
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// Baseline: `cat file` on a fresh PTY, read in a plain loop until EOF.
async fn raw_pty_cat(file: &Path) -> anyhow::Result<Transfer> {
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || {
        let pair = native_pty_system().openpty(pty_size())?;
        let mut command = CommandBuilder::new("cat");
        command.arg(&file);
        let started = Instant::now();
        let mut child = pair.slave.spawn_command(command)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader()?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        // EOF or EIO once the child exits and the last byte was read.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
        let elapsed = started.elapsed();
        child.wait()?;
        Ok(Transfer { bytes, elapsed })
    })
    .await?
}

/// The same `cat` typed into a gateway session, read by one viewer.
async fn gateway_cat(
    gateway: &Gateway,
    file: &Path,
    ack_kib: u64,
) -> anyhow::Result<(Transfer, CpuTimes)> {
    let id = gateway.create_session().await?;
    let mut viewer = Viewer::attach(gateway.addr, &id).await?;
    viewer.ack_every = ack_kib.clamp(1, 128) * 1024;
    viewer
        .type_text("stty -echo; echo ready-$((1+1))\r")
        .await?;
    viewer.wait_for(b"ready-2").await?;
    let cpu = CpuTimes::sample(gateway.pid());
    let started = Instant::now();
    viewer
        .type_text(&format!("cat '{}'; echo done-$((5+5))\r", file.display()))
        .await?;
    let bytes = viewer.wait_for(b"done-10").await?;
    let elapsed = started.elapsed();
    let cpu = CpuTimes::sample(gateway.pid()).since(&cpu);
    gateway.end_session(&id).await;
    Ok((Transfer { bytes, elapsed }, cpu))
}

/// Baseline: a loopback WebSocket server that echoes every message.
async fn bare_ws_echo(keystrokes: usize) -> anyhow::Result<Vec<Duration>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut socket = tokio_tungstenite::accept_async(stream).await?;
        while let Some(message) = socket.next().await {
            let message = message?;
            if message.is_binary() {
                socket.send(message).await?;
            }
        }
        anyhow::Ok(())
    });
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), None, true).await?;
    let mut samples = Vec::with_capacity(keystrokes);
    for i in 0..keystrokes + keystrokes / 10 {
        let key = vec![b'a' + (i % 26) as u8];
        let started = Instant::now();
        socket.send(Message::binary(key.clone())).await?;
        loop {
            match socket.next().await.context("echo server closed")?? {
                Message::Binary(data) if data[..] == key[..] => break,
                _ => {}
            }
        }
        if i >= keystrokes / 10 {
            samples.push(started.elapsed());
        }
    }
    socket.close(None).await?;
    let _ = server.await;
    Ok(samples)
}

/// Baseline: `stty raw -echo; cat` on a bare PTY, one byte written and read back.
async fn raw_pty_echo(keystrokes: usize) -> anyhow::Result<Vec<Duration>> {
    tokio::task::spawn_blocking(move || {
        let pair = native_pty_system().openpty(pty_size())?;
        let mut command = CommandBuilder::new("/bin/sh");
        command.args(["-c", "stty raw -echo; echo go-$((2+3)); exec cat"]);
        let mut child = pair.slave.spawn_command(command)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader()?;
        let mut writer = pair.master.take_writer()?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while memchr::memmem::find(&seen, b"go-5").is_none() {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                bail!("the PTY closed before the echo started");
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let mut samples = Vec::with_capacity(keystrokes);
        for i in 0..keystrokes + keystrokes / 10 {
            let key = b'a' + (i % 26) as u8;
            let started = Instant::now();
            writer.write_all(&[key])?;
            writer.flush()?;
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    bail!("the PTY closed");
                }
                if buf[..n].contains(&key) {
                    break;
                }
            }
            if i >= keystrokes / 10 {
                samples.push(started.elapsed());
            }
        }
        child.kill()?;
        Ok(samples)
    })
    .await?
}

/// Keystrokes into `stty raw -echo; cat` in a gateway session.
async fn gateway_echo(gateway: &Gateway, keystrokes: usize) -> anyhow::Result<Vec<Duration>> {
    let id = gateway.create_session().await?;
    let mut viewer = Viewer::attach(gateway.addr, &id).await?;
    viewer
        .type_text("stty raw -echo; echo go-$((2+3)); exec cat\r")
        .await?;
    viewer.wait_for(b"go-5").await?;
    let mut samples = Vec::with_capacity(keystrokes);
    for i in 0..keystrokes + keystrokes / 10 {
        let key = [b'a' + (i % 26) as u8];
        let started = Instant::now();
        viewer.socket.send(Message::binary(key.to_vec())).await?;
        tokio::time::timeout(DEADLINE, async {
            loop {
                match viewer.next().await? {
                    Delivery::Output(data) if data.contains(&key[0]) => return Ok(()),
                    Delivery::Closed => bail!("the socket closed"),
                    _ => {}
                }
            }
        })
        .await
        .context("no echo")??;
        if i >= keystrokes / 10 {
            samples.push(started.elapsed());
        }
    }
    gateway.end_session(&id).await;
    Ok(samples)
}

/// What a held viewer reports.
enum ViewerEvent {
    Ready,
    Marker,
    Closed,
    Failed(String),
}

/// One viewer held open: attaches, reports ready, reports the marker when
/// it appears, and detaches when told.
async fn hold_viewer(
    addr: SocketAddr,
    id: Arc<str>,
    connecting: Arc<Semaphore>,
    events: mpsc::UnboundedSender<ViewerEvent>,
    mut detach: watch::Receiver<bool>,
) {
    let result = async {
        let permit = connecting.acquire().await?;
        let mut viewer = tokio::time::timeout(DEADLINE, Viewer::attach(addr, &id))
            .await
            .context("attach timed out")??;
        drop(permit);
        let _ = events.send(ViewerEvent::Ready);
        let mut tail: Vec<u8> = Vec::new();
        let mut marked = false;
        loop {
            tokio::select! {
                delivery = viewer.next() => match delivery? {
                    Delivery::Output(data) if !marked => {
                        tail.extend_from_slice(&data);
                        if memchr::memmem::find(&tail, MARKER).is_some() {
                            marked = true;
                            let _ = events.send(ViewerEvent::Marker);
                        }
                        let keep = tail.len().min(MARKER.len());
                        tail.drain(..tail.len() - keep);
                    }
                    Delivery::Closed => bail!("closed before detaching"),
                    _ => {}
                },
                _ = detach.changed() => break,
            }
        }
        viewer
            .socket
            .send(Message::text(r#"{"type":"detach"}"#))
            .await?;
        while !matches!(viewer.next().await, Ok(Delivery::Closed) | Err(_)) {}
        anyhow::Ok(())
    }
    .await;
    let _ = events.send(match result {
        Ok(()) => ViewerEvent::Closed,
        Err(e) => ViewerEvent::Failed(format!("{e:#}")),
    });
}

/// The marker line every held viewer waits for (`echo mark-$((6*7))`).
const MARKER: &[u8] = b"mark-42";

/// A group of held viewers on one session.
struct Crowd {
    addr: SocketAddr,
    id: Arc<str>,
    connecting: Arc<Semaphore>,
    events_tx: mpsc::UnboundedSender<ViewerEvent>,
    events: mpsc::UnboundedReceiver<ViewerEvent>,
    detach_tx: watch::Sender<bool>,
    held: usize,
}

impl Crowd {
    fn new(gateway: &Gateway, id: &str) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        Self {
            addr: gateway.addr,
            id: id.into(),
            connecting: Arc::new(Semaphore::new(CONNECT_CONCURRENCY)),
            events_tx,
            events,
            detach_tx: watch::channel(false).0,
            held: 0,
        }
    }

    /// Attaches `n` more viewers; returns once all are attached.
    async fn attach(&mut self, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            tokio::spawn(hold_viewer(
                self.addr,
                self.id.clone(),
                self.connecting.clone(),
                self.events_tx.clone(),
                self.detach_tx.subscribe(),
            ));
        }
        self.held += n;
        self.expect(n, |e| matches!(e, ViewerEvent::Ready)).await
    }

    /// Waits for `n` events matching `wanted`; fails on a viewer failure.
    async fn expect(&mut self, n: usize, wanted: fn(&ViewerEvent) -> bool) -> anyhow::Result<()> {
        let mut seen = 0;
        while seen < n {
            let event = tokio::time::timeout(DEADLINE * 2, self.events.recv())
                .await
                .with_context(|| format!("only {seen} of {n} viewers within {:?}", DEADLINE * 2))?
                .context("viewer events ended")?;
            if let ViewerEvent::Failed(e) = &event {
                bail!("a viewer failed: {e}");
            }
            if wanted(&event) {
                seen += 1;
            }
        }
        Ok(())
    }

    async fn detach_all(&mut self) -> anyhow::Result<()> {
        self.detach_tx.send_replace(true);
        self.expect(self.held, |e| matches!(e, ViewerEvent::Closed))
            .await
    }
}

async fn viewers(gateway: &Gateway, args: &Args) -> anyhow::Result<()> {
    let pid = gateway.pid();
    let id = gateway.create_session().await?;
    let mut typist = Viewer::attach(gateway.addr, &id).await?;
    typist.type_text("echo ready-$((3+4))\r").await?;
    typist.wait_for(b"ready-7").await?;
    drop(typist);

    // Warm up the allocator and the broker's attach path.
    let mut warm = Crowd::new(gateway, &id);
    warm.attach(20).await?;
    warm.detach_all().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fds_before = fd_count(pid);
    let rss_before = rss_kib(pid);

    let mut crowd = Crowd::new(gateway, &id);
    let started = Instant::now();
    crowd.attach(args.idle_viewers).await?;
    let idle_attach = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(pid);
    let per_idle = (rss_idle.saturating_sub(rss_before)) as f64 / args.idle_viewers as f64;
    println!(
        "| gateway memory per idle attached viewer ({} viewers on one session) | {per_idle:.1} KiB | gateway RSS before: {rss_before} KiB, after: {rss_idle} KiB | | < 64 KiB |",
        args.idle_viewers
    );

    let more = args.viewers - args.idle_viewers;
    let started = Instant::now();
    crowd.attach(more).await?;
    let attach_rest = started.elapsed();
    let fds_held = fd_count(pid);
    let rss_held = rss_kib(pid);

    // Fan-out: a marker line printed by the session reaches every viewer.
    let mut marker_typist = Viewer::attach(gateway.addr, &id).await?;
    let started = Instant::now();
    marker_typist.type_text("echo mark-$((6*7))\r").await?;
    crowd
        .expect(args.viewers, |e| matches!(e, ViewerEvent::Marker))
        .await?;
    let fan_out = started.elapsed();
    marker_typist.wait_for(MARKER).await?;
    let started = Instant::now();
    crowd.detach_all().await?;
    let detach = started.elapsed();
    drop(marker_typist);

    let fds_after = wait_fds(pid, fds_before).await;
    println!(
        "| {} concurrent attached viewers on one session | attached in {:.2} s ({} then {}); marker line to all in {}; all detached in {} | gateway fds: {fds_before} before, {fds_held} held, {fds_after} after | RSS {:.1} KiB per viewer at {} | fds back to baseline: {} |",
        args.viewers,
        (idle_attach + attach_rest).as_secs_f64(),
        args.idle_viewers,
        more,
        ms(fan_out),
        ms(detach),
        rss_held.saturating_sub(rss_before) as f64 / args.viewers as f64,
        args.viewers,
        if fds_after <= fds_before { "yes" } else { "NO" }
    );
    gateway.end_session(&id).await;
    Ok(())
}

/// Polls the fd count until it is back to `baseline` (at most 30 s).
async fn wait_fds(pid: u32, baseline: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = fd_count(pid);
        if now <= baseline || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

fn rss_kib(pid: u32) -> u64 {
    dispatch_testkit::process::rss_kib(pid).unwrap_or(0)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// CPU seconds (user + system) of the gateway, its broker child and this
/// process.
struct CpuTimes {
    gateway: f64,
    broker: f64,
    client: f64,
}

impl CpuTimes {
    fn sample(gateway: u32) -> Self {
        let broker = children_of(gateway).into_iter().map(cpu_seconds).sum();
        Self {
            gateway: cpu_seconds(gateway),
            broker,
            client: cpu_seconds(std::process::id()),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            gateway: self.gateway - before.gateway,
            broker: self.broker - before.broker,
            client: self.client - before.client,
        }
    }
}

/// The fields of `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_comm.split_whitespace().map(str::to_owned).collect()
}

/// User plus system CPU seconds of a process (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let fields = stat_fields(pid);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| stat_fields(*child).get(1).and_then(|p| p.parse().ok()) == Some(pid))
        .collect()
}
