//! `dispatch-bench broker`: the PTY broker against a raw PTY.
//!
//! The broker runs in a child process (this binary's hidden `serve-broker`
//! subcommand, the real library server) so that its memory, descriptors and
//! processes are measured apart from the client's.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dispatch_broker::client::{self, BearerToken};
use dispatch_broker::{Broker, ListenAddr, Listener};
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::sessions_client::SessionsClient;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const TOKEN: &str = "dispatch-bench-token";

type Client = SessionsClient<InterceptedService<Channel, BearerToken>>;

/// Options of the broker benchmark.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Megabytes printed by `cat` for the throughput figure.
    #[arg(long, default_value_t = 100)]
    megabytes: usize,
    /// Keystrokes timed for the echo round trip.
    #[arg(long, default_value_t = 1000)]
    keystrokes: usize,
    /// Sessions created for the creation time and idle memory figures.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Sessions created and ended at once for the leak check.
    #[arg(long, default_value_t = 1000)]
    concurrent: usize,
    /// Rounds of the throughput figure (raw PTY, then broker, each round);
    /// the medians are compared.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// KiB the throughput viewer receives between acknowledgements, as the
    /// gateway acknowledges what browsers acknowledge (every 32 KiB).
    #[arg(long, default_value_t = 32)]
    ack_kib: u64,
    /// Serve gRPC on a Unix socket instead of loopback TCP.
    #[arg(long)]
    unix: bool,
    /// Internal: serve a broker configured from the environment.
    #[arg(long, hide = true)]
    serve: bool,
}

pub async fn run(options: Options) -> Result<()> {
    if options.serve {
        return serve().await;
    }
    let work = tempfile::tempdir()?;
    let listen = if options.unix {
        format!("unix:{}", work.path().join("broker.sock").display())
    } else {
        "127.0.0.1:0".to_owned()
    };
    let mut server = BrokerProcess::start(
        work.path(),
        &listen,
        options.concurrent.max(options.sessions) + 100,
    )?;
    let result = measure(&options, &server, work.path()).await;
    server.stop();
    result
}

async fn measure(options: &Options, server: &BrokerProcess, work: &Path) -> Result<()> {
    let mut client = server.client().await?;
    println!("dispatch-bench broker: figures beside a raw PTY measured in the same run\n");

    let file = work.join("output.txt");
    write_lines(&file, options.megabytes << 20)?;
    let (mut raw, mut brokered) = (Vec::new(), Vec::new());
    for _ in 0..options.rounds.max(1) {
        raw.push(raw_cat_throughput(&file)?);
        let ack_every = options.ack_kib.clamp(1, 128) << 10;
        brokered.push(broker_cat_throughput(&mut client, server, &file, ack_every).await?);
    }
    let rates = |transfers: &[Transfer]| transfers.iter().map(|t| t.mb_per_s).collect::<Vec<_>>();
    let (raw_rates, broker_rates) = (rates(&raw), rates(&brokered));
    let transport = if options.unix { "Unix socket" } else { "TCP" };
    report(
        &format!("output throughput (cat, gRPC over {transport})"),
        percentile(&broker_rates, 50.0),
        percentile(&raw_rates, 50.0),
        "MB/s",
        ">= 0.8 x raw PTY",
    );
    let column = |transfers: &[Transfer], pick: fn(&Transfer) -> f64| {
        figures(&transfers.iter().map(pick).collect::<Vec<_>>())
    };
    println!(
        "  {} rounds: broker {} MB/s, raw PTY {} MB/s; output messages of {} KiB on average, acknowledged every {} KiB",
        raw.len(),
        figures(&broker_rates),
        figures(&raw_rates),
        column(&brokered, |t| t.message_kib),
        options.ack_kib.clamp(1, 128),
    );
    println!(
        "  CPU ms per 100 MB: broker {} + viewer {}; raw PTY read loop {}",
        column(&brokered, |t| t.broker_cpu_ms),
        column(&brokered, |t| t.viewer_cpu_ms),
        column(&raw, |t| t.viewer_cpu_ms),
    );

    let raw_echo = raw_echo_latencies(options.keystrokes)?;
    let broker_echo = broker_echo_latencies(&mut client, options.keystrokes).await?;
    report(
        "keystroke echo p50",
        percentile(&broker_echo, 50.0),
        percentile(&raw_echo, 50.0),
        "ms",
        "",
    );
    report(
        "keystroke echo p99",
        percentile(&broker_echo, 99.0),
        percentile(&raw_echo, 99.0),
        "ms",
        "p99 < 1 ms",
    );

    let raw_spawn = raw_spawn_times(options.sessions.min(100))?;
    let before = server.rss_kib();
    let (created, ids) = create_sessions(&mut client, options.sessions).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    report(
        "session creation p50",
        percentile(&created, 50.0),
        percentile(&raw_spawn, 50.0),
        "ms",
        "< 10 ms",
    );
    let per_session = after.saturating_sub(before) as f64 / options.sessions as f64;
    // Baseline: the screen grid alone (80x24 cells of 32 bytes).
    report(
        "memory per idle session",
        per_session,
        80.0 * 24.0 * 32.0 / 1024.0,
        "KiB",
        "< 150 KiB (shell excluded)",
    );
    end_sessions(&mut client, ids).await?;

    concurrent_sessions(&mut client, server, options.concurrent).await?;
    Ok(())
}

/// Prints one figure beside its baseline.
fn report(name: &str, value: f64, baseline: f64, unit: &str, target: &str) {
    let ratio = if baseline > 0.0 {
        value / baseline
    } else {
        f64::NAN
    };
    println!(
        "{name:<42} {value:>12.2} {unit:<6} baseline {baseline:>12.2} {unit:<6} ratio {ratio:>6.2}   target: {target}"
    );
}

/// Figures of every round, one decimal each.
fn figures(values: &[f64]) -> String {
    let shown: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
    shown.join(" / ")
}

/// Writes `bytes` of 100-character lines.
fn write_lines(path: &Path, bytes: usize) -> Result<()> {
    let line: Vec<u8> = (0..99)
        .map(|i| b'a' + (i % 26) as u8)
        .chain([b'\n'])
        .collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for _ in 0..bytes / line.len() {
        file.write_all(&line)?;
    }
    file.flush()?;
    Ok(())
}

fn pty_size() -> PtySize {
    PtySize {
        rows: 24,
        cols: 80,
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// One transfer of the throughput figure.
struct Transfer {
    mb_per_s: f64,
    /// Mean output message size (0 for the raw PTY).
    message_kib: f64,
    /// CPU of the broker process, per 100 MB (0 for the raw PTY).
    broker_cpu_ms: f64,
    /// CPU of this process (the reading side), per 100 MB.
    viewer_cpu_ms: f64,
}

impl Transfer {
    fn new(bytes: usize, elapsed: Duration, broker_cpu: Duration, viewer_cpu: Duration) -> Self {
        let per_100_mb = |cpu: Duration| cpu.as_secs_f64() * 1e3 * 100e6 / bytes.max(1) as f64;
        Self {
            mb_per_s: bytes as f64 / elapsed.as_secs_f64() / 1e6,
            message_kib: 0.0,
            broker_cpu_ms: per_100_mb(broker_cpu),
            viewer_cpu_ms: per_100_mb(viewer_cpu),
        }
    }
}

/// CPU time (user + system) used by this process so far.
fn own_cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |usage| {
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        micros(usage.user_time()) + micros(usage.system_time())
    })
}

/// `cat file` read from a PTY by a plain read loop.
fn raw_cat_throughput(file: &Path) -> Result<Transfer> {
    let cpu_before = own_cpu_time();
    let pair = native_pty_system().openpty(pty_size())?;
    let mut cmd = CommandBuilder::new("cat");
    cmd.arg(file);
    let started = Instant::now();
    let mut child = pair.slave.spawn_command(cmd)?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader()?;
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0usize;
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    let elapsed = started.elapsed();
    let cpu = own_cpu_time() - cpu_before;
    child.wait()?;
    Ok(Transfer::new(total, elapsed, Duration::ZERO, cpu))
}

struct Attached {
    tx: mpsc::Sender<pb::AttachRequest>,
    rx: tonic::Streaming<pb::AttachResponse>,
    /// Bytes received between acknowledgements (0: every message).
    ack_every: u64,
    acked: u64,
    /// Output messages received.
    messages: usize,
}

impl Attached {
    async fn new(client: &mut Client, id: &str) -> Result<Self> {
        let (tx, requests) = mpsc::channel(256);
        tx.send(pb::AttachRequest {
            kind: Some(pb::attach_request::Kind::Start(pb::AttachStart {
                session_id: id.into(),
                cols: 80,
                rows: 24,
                flow_control: true,
                ..Default::default()
            })),
        })
        .await?;
        let rx = client
            .attach(tokio_stream::wrappers::ReceiverStream::new(requests))
            .await?
            .into_inner();
        Ok(Self {
            tx,
            rx,
            ack_every: 0,
            acked: 0,
            messages: 0,
        })
    }

    async fn input(&self, data: &[u8]) -> Result<()> {
        self.tx
            .send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Input(data.to_vec().into())),
            })
            .await?;
        Ok(())
    }

    /// Receives output (acknowledging it) until `done` says so.
    async fn read_until(&mut self, mut done: impl FnMut(&[u8]) -> bool) -> Result<usize> {
        let mut total = 0;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(120), self.rx.message())
                .await
                .context("output in time")??
                .context("stream open")?;
            match message.kind {
                Some(pb::attach_response::Kind::Output(output)) => {
                    total += output.data.len();
                    self.messages += 1;
                    self.ack(output.end_offset, false);
                    if done(&output.data) {
                        self.ack(output.end_offset, true);
                        return Ok(total);
                    }
                }
                Some(pb::attach_response::Kind::Replay(replay)) => self.ack(replay.offset, true),
                _ => {}
            }
        }
    }

    /// Acknowledges output up to `offset` once `ack_every` bytes have
    /// arrived since the last acknowledgement (or now, when `force`d).
    fn ack(&mut self, offset: u64, force: bool) {
        if force || offset.saturating_sub(self.acked) >= self.ack_every {
            self.acked = offset;
            let _ = self.tx.try_send(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Ack(offset)),
            });
        }
    }

    /// Applies output until none comes for `quiet`.
    async fn settle(&mut self, quiet: Duration) {
        while let Ok(Ok(Some(_))) = tokio::time::timeout(quiet, self.rx.message()).await {}
    }
}

async fn create(client: &mut Client) -> Result<pb::Session> {
    Ok(client
        .create_session(pb::CreateSessionRequest {
            mode: pb::SessionMode::Shell as i32,
            cols: 80,
            rows: 24,
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// The same `cat` through the broker to a gRPC viewer that acknowledges
/// every `ack_every` bytes.
async fn broker_cat_throughput(
    client: &mut Client,
    server: &BrokerProcess,
    file: &Path,
    ack_every: u64,
) -> Result<Transfer> {
    let session = create(client).await?;
    let mut viewer = Attached::new(client, &session.id).await?;
    viewer.settle(Duration::from_millis(500)).await;
    viewer.ack_every = ack_every;
    let command = format!("cat {}; echo END''MARK\r", file.display());
    let (broker_cpu_before, viewer_cpu_before) = (server.cpu_time(), own_cpu_time());
    let started = Instant::now();
    viewer.input(command.as_bytes()).await?;
    // The end mark is looked for in each message and across the boundary
    // with the one before (the last few bytes), so the viewer does about
    // as little per byte as the raw read loop.
    const MARK: &[u8] = b"ENDMARK";
    let finder = memchr::memmem::Finder::new(MARK);
    let mut tail = Vec::new();
    let total = viewer
        .read_until(|data| {
            let head = &data[..data.len().min(MARK.len())];
            tail.extend_from_slice(head);
            let found = finder.find(&tail).is_some() || finder.find(data).is_some();
            tail.clear();
            tail.extend_from_slice(&data[data.len().saturating_sub(MARK.len())..]);
            found
        })
        .await?;
    let elapsed = started.elapsed();
    let broker_cpu = server.cpu_time() - broker_cpu_before;
    let viewer_cpu = own_cpu_time() - viewer_cpu_before;
    client
        .end_session(pb::EndSessionRequest { id: session.id })
        .await?;
    Ok(Transfer {
        message_kib: total as f64 / viewer.messages.max(1) as f64 / 1024.0,
        ..Transfer::new(total, elapsed, broker_cpu, viewer_cpu)
    })
}

/// Echo round trips (ms) of single keystrokes to `cat` on a raw PTY.
fn raw_echo_latencies(count: usize) -> Result<Vec<f64>> {
    let pair = native_pty_system().openpty(pty_size())?;
    let mut child = pair.slave.spawn_command(CommandBuilder::new("cat"))?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader()?;
    let mut writer = pair.master.take_writer()?;
    let mut buf = [0u8; 4096];
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let key = if i % 64 == 63 { b'\n' } else { b'a' };
        let started = Instant::now();
        writer.write_all(&[key])?;
        loop {
            let n = reader.read(&mut buf)?;
            if buf[..n].contains(&key) {
                break;
            }
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    child.kill()?;
    Ok(times)
}

/// Echo round trips (ms) of single keystrokes to `cat` through the broker.
async fn broker_echo_latencies(client: &mut Client, count: usize) -> Result<Vec<f64>> {
    let session = create(client).await?;
    let mut viewer = Attached::new(client, &session.id).await?;
    viewer.input(b"exec cat\r").await?;
    viewer.settle(Duration::from_millis(500)).await;
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let key = if i % 64 == 63 { b'\n' } else { b'a' };
        let started = Instant::now();
        viewer.input(&[key]).await?;
        viewer.read_until(|data| data.contains(&key)).await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    client
        .end_session(pb::EndSessionRequest { id: session.id })
        .await?;
    Ok(times)
}

/// Milliseconds to open a PTY and spawn the shell directly.
fn raw_spawn_times(count: usize) -> Result<Vec<f64>> {
    let shell = dispatch_broker::session::pty::login_shell();
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let pair = native_pty_system().openpty(pty_size())?;
        let mut child = pair.slave.spawn_command(CommandBuilder::new(&shell))?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        drop(pair);
        child.kill()?;
        child.wait()?;
    }
    Ok(times)
}

async fn create_sessions(client: &mut Client, count: usize) -> Result<(Vec<f64>, Vec<String>)> {
    let mut times = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let session = create(client).await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        ids.push(session.id);
    }
    Ok((times, ids))
}

async fn end_sessions(client: &mut Client, ids: Vec<String>) -> Result<()> {
    let ends = ids.into_iter().map(|id| {
        let mut client = client.clone();
        async move { client.end_session(pb::EndSessionRequest { id }).await }
    });
    for result in futures_join(ends).await {
        result?;
    }
    Ok(())
}

async fn futures_join<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut outputs = Vec::new();
    let handles: Vec<_> = futures.into_iter().collect();
    for future in handles {
        outputs.push(future.await);
    }
    outputs
}

/// Creates `count` sessions, ends them all, and compares descriptors,
/// processes and memory with before.
async fn concurrent_sessions(
    client: &mut Client,
    server: &BrokerProcess,
    count: usize,
) -> Result<()> {
    let before = server.resources();
    let (_, ids) = create_sessions(client, count).await?;
    let during = server.resources();
    end_sessions(client, ids).await?;
    // Ended sessions stay listed for the retention (1 s here), then go.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .list_sessions(pb::ListSessionsRequest {})
        .await?
        .into_inner()
        .sessions
        .is_empty()
    {
        if Instant::now() > deadline {
            bail!("ended sessions were not dropped");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.resources();
    println!(
        "{count} sessions created and ended: fds {} -> {} -> {}, processes {} -> {} -> {}, broker threads {} -> {} -> {}, RSS {} -> {} -> {} KiB (before -> with sessions -> after)",
        before.fds,
        during.fds,
        after.fds,
        before.processes,
        during.processes,
        after.processes,
        before.threads,
        during.threads,
        after.threads,
        before.rss_kib,
        during.rss_kib,
        after.rss_kib
    );
    report(
        "1,000 sessions: fds after / before",
        after.fds as f64,
        before.fds as f64,
        "fds",
        "back to baseline",
    );
    report(
        "1,000 sessions: processes after / before",
        after.processes as f64,
        before.processes as f64,
        "procs",
        "back to baseline",
    );
    report(
        "1,000 sessions: broker threads after / before",
        after.threads as f64,
        before.threads as f64,
        "threads",
        "back to baseline",
    );
    report(
        "1,000 sessions: RSS after / before",
        after.rss_kib as f64,
        before.rss_kib as f64,
        "KiB",
        "back to baseline",
    );
    Ok(())
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index]
}

struct Resources {
    fds: usize,
    processes: usize,
    threads: u64,
    rss_kib: u64,
}

/// The broker in a child process.
struct BrokerProcess {
    child: Child,
    addr: ListenAddr,
}

impl BrokerProcess {
    fn start(work: &Path, listen: &str, max_sessions: usize) -> Result<Self> {
        let home = work.join("home");
        std::fs::create_dir_all(&home)?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["broker", "--serve"])
            .env("BROKER_LISTEN", listen)
            .env("BROKER_TOKEN", TOKEN)
            .env("PTY_ROOT", work.join("sessions"))
            .env("BROKER_MAX_SESSIONS", max_sessions.to_string())
            .env("BROKER_RETENTION_SECS", "1")
            .env("HOME", &home)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        own_session(&mut command);
        let mut child = command.spawn()?;
        let mut stdout = child.stdout.take().context("stdout")?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte)? == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line)?;
        let addr = dispatch_testkit::announce::broker_address(&line)
            .with_context(|| format!("unexpected broker output {line:?}"))?
            .parse()
            .map_err(anyhow::Error::msg)?;
        Ok(Self { child, addr })
    }

    async fn client(&self) -> Result<Client> {
        let channel = client::connect(&self.addr).await?;
        Ok(
            SessionsClient::with_interceptor(channel, BearerToken::new(TOKEN)?)
                .max_decoding_message_size(64 << 20),
        )
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the broker has used so far.
    fn cpu_time(&self) -> Duration {
        dispatch_broker::procfs::cpu_time(self.pid()).unwrap_or_default()
    }

    fn rss_kib(&self) -> u64 {
        self.status_figure("VmRSS:")
    }

    /// A number of the broker's `/proc/<pid>/status` (0 when unreadable).
    fn status_figure(&self, field: &str) -> u64 {
        dispatch_testkit::process::status_kib(self.pid(), field).unwrap_or(0)
    }

    fn resources(&self) -> Resources {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0);
        let processes = descendants(self.pid() as i32);
        Resources {
            fds,
            processes,
            threads: self.status_figure("Threads:"),
            rss_kib: self.rss_kib(),
        }
    }

    fn stop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// Makes the broker the leader of its own session, as a service or a
/// container is: with the kernel's autogroup scheduling, it then has its
/// own share of the CPU rather than one shared with this client.
#[allow(unsafe_code)]
fn own_session(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the
    // parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
}

/// Processes descending from `pid` (children, grandchildren, ...), zombies
/// included.
fn descendants(pid: i32) -> usize {
    let mut parents = std::collections::HashMap::<i32, Vec<i32>>::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.filter_map(Result::ok) {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.entry(ppid).or_default().push(child);
            }
        }
    }
    let mut stack = vec![pid];
    let mut count = 0;
    while let Some(p) = stack.pop() {
        for &child in parents.get(&p).map(Vec::as_slice).unwrap_or_default() {
            count += 1;
            stack.push(child);
        }
    }
    count
}

/// The hidden server side: a broker configured from the environment.
async fn serve() -> Result<()> {
    use clap::Parser;
    let cli = dispatch_broker::Cli::parse_from(["dispatch-broker"]);
    raise_fd_limit();
    {
        let listener = Listener::bind(&cli.config.listen).await?;
        let addr = listener.local_addr()?;
        println!("{}{addr}", dispatch_testkit::announce::BROKER_LISTENING);
        let broker = Broker::new(cli.config)?;
        let shutdown = broker.shutdown_handle();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            term.recv().await;
            shutdown.shutdown();
            Ok::<_, std::io::Error>(())
        });
        broker.serve(listener).await
    }
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
