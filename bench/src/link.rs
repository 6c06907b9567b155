//! `dispatch-bench link`: dispatch on a slow link. Creates a network
//! namespace whose loopback is shaped with `tc ... tbf` (4 Mbit/s by
//! default), runs `dispatch-broker`, `dispatch-gateway` and a client inside
//! it, and measures, for the current settings beside a baseline measured in
//! the same run (the fixed flow-control window, no compression, the
//! kernel's own send buffering):
//!
//! - a 5 MB `cat` in a session that then exits: bytes delivered, whether the
//!   `exit` message came, and how the socket ended;
//! - Ctrl+C during a `seq` flood: time until the prompt is back, and the
//!   bytes that still arrived after the interrupt;
//! - `seq 1 1000000`: bytes on the wire beside the bytes printed;
//! - the first page load: bytes on the wire.
//!
//! The client reads as fast as the link allows and acknowledges every frame
//! as it reads it. Needs root, `ip` and `tc`; skips with a message
//! otherwise. The namespace is deleted whatever happens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use anyhow::{Context, bail};
use dispatch_testkit::deflate_frames::{Inflater, PROTOCOL};
use futures::{SinkExt, StreamExt};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::stack::{Binaries, KEY, Stack, http};

/// Limit for any one step on the slow link.
const DEADLINE: Duration = Duration::from_secs(120);
/// Longest silence of a socket that should be sending.
const QUIET_LIMIT: Duration = Duration::from_secs(30);
/// The prompt the sessions' shell shows.
const PROMPT: &str = "ready> ";

/// Options of the link benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Rate of the shaped loopback, as `tc` reads it.
    #[arg(long, default_value = "4mbit")]
    rate: String,
    /// Megabytes of the file `cat` prints.
    #[arg(long, default_value_t = 5)]
    cat_mb: u64,
    /// Lines of `seq` for the wire-bytes figure.
    #[arg(long, default_value_t = 1_000_000)]
    seq_lines: u64,
    /// Seconds of `seq` flood before the Ctrl+C.
    #[arg(long, default_value_t = 3)]
    flood_secs: u64,
    /// Times the flood and its Ctrl+C are repeated (the median and the
    /// worst are reported).
    #[arg(long, default_value_t = 7)]
    interrupts: usize,
    /// Measures only the current defaults, without the baseline.
    #[arg(long)]
    current_only: bool,
    /// The directory holding dispatch-gateway and dispatch-broker (default:
    /// the one holding this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Set when already running inside the shaped namespace.
    #[arg(long, hide = true)]
    inside: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.inside {
        return measure(&args).await;
    }
    if let Some(reason) = cannot_shape() {
        println!("dispatch-bench link: skipped: {reason}");
        return Ok(());
    }
    let namespace = Namespace::create(&args.rate).await?;
    let result = namespace.run_inside().await;
    namespace.delete().await;
    result
}

/// Why no shaped namespace can be made here, if so.
fn cannot_shape() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("creating a network namespace needs root".into());
    }
    for tool in ["ip", "tc"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()));
        if !found {
            return Some(format!("`{tool}` (iproute2) is not installed"));
        }
    }
    None
}

/// A network namespace with a shaped loopback.
struct Namespace {
    name: String,
}

impl Namespace {
    async fn create(rate: &str) -> anyhow::Result<Self> {
        let namespace = Self {
            name: format!("dispatch-bench-{}", std::process::id()),
        };
        let name = namespace.name.as_str();
        let steps: [&[&str]; 3] = [
            &["ip", "netns", "add", name],
            // Packets of an Ethernet link: tbf drops any packet larger than its burst.
            &["ip", "-n", name, "link", "set", "lo", "mtu", "1500", "up"],
            &[
                "tc", "-n", name, "qdisc", "add", "dev", "lo", "root", "tbf", "rate", rate,
                "burst", "32kbit", "latency", "400ms",
            ],
        ];
        for step in steps {
            if let Err(err) = command_ok(step).await {
                namespace.delete().await;
                return Err(err);
            }
        }
        println!(
            "namespace {name}: loopback (MTU 1500) shaped by `tbf rate {rate} burst 32kbit latency 400ms`"
        );
        Ok(namespace)
    }

    /// Runs this benchmark again inside the namespace, until it ends or Ctrl+C.
    async fn run_inside(&self) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .arg("--inside")
            .kill_on_drop(true)
            .spawn()
            .context("running ip netns exec")?;
        let status = tokio::select! {
            status = child.wait() => status?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        };
        if !status.success() {
            bail!("the measurement inside the namespace failed ({status})");
        }
        Ok(())
    }

    async fn delete(&self) {
        if let Err(err) = command_ok(&["ip", "netns", "delete", &self.name]).await {
            eprintln!("could not delete namespace {}: {err:#}", self.name);
        }
    }
}

async fn command_ok(argv: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(argv[0]).args(&argv[1..]).output().await?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// What one configuration delivered.
#[derive(Default)]
struct Figures {
    cat_delivered: u64,
    cat_expected: u64,
    cat_exit: bool,
    cat_end: String,
    cat_secs: f64,
    /// Every Ctrl+C's figures, fastest first.
    interrupts: Vec<Interrupt>,
    interrupt_failure: Option<String>,
    seq_wire: u64,
    seq_failure: Option<String>,
    seq_raw: u64,
    first_load: u64,
}

/// One Ctrl+C in a flood: time to the prompt, bytes after it (as printed
/// and on the wire).
#[derive(Clone, Copy, Default)]
struct Interrupt {
    time: Duration,
    raw: u64,
    wire: u64,
}

impl Figures {
    /// The median and the worst Ctrl+C, if any was measured.
    fn interrupt_summary(&self) -> Option<(Interrupt, Interrupt)> {
        let worst = *self.interrupts.last()?;
        Some((self.interrupts[self.interrupts.len() / 2], worst))
    }
}

/// One side of the comparison.
struct Setup {
    name: &'static str,
    /// Environment of the broker and the gateway.
    env: &'static [(&'static str, &'static str)],
    /// The client offers compressed output.
    deflate: bool,
    /// `Accept-Encoding` of the page load.
    accept_encoding: &'static str,
}

const BASELINE: Setup = Setup {
    name: "baseline: fixed window, no compression",
    env: &[
        ("BROKER_FLOW_WINDOW_MS", "0"),
        ("TERMINAL_COMPRESSION", "false"),
        ("TCP_NOTSENT_LOWAT_BYTES", "0"),
    ],
    deflate: false,
    accept_encoding: "identity",
};

const CURRENT: Setup = Setup {
    name: "current defaults",
    env: &[],
    deflate: true,
    accept_encoding: "gzip, deflate, br, zstd",
};

async fn measure(args: &Args) -> anyhow::Result<()> {
    let gateway = args
        .bin_dir
        .as_ref()
        .map(|dir| dir.join("dispatch-gateway"));
    let bins = Binaries::find(gateway.as_deref())?;
    let work = tempfile::tempdir()?;
    let file = work.path().join("cat.txt");
    let lines = write_text(&file, args.cat_mb * 1_000_000)?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "`cat` of {:.1} MB, `seq 1 {}`, Ctrl+C after {} s of `seq`; the client acknowledges every frame",
        size as f64 / 1e6,
        args.seq_lines,
        args.flood_secs
    );
    let mut results = Vec::new();
    let setups: &[&Setup] = if args.current_only {
        &[&CURRENT]
    } else {
        &[&CURRENT, &BASELINE]
    };
    for setup in setups {
        let mut env: Vec<_> = setup.env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if let Ok(log) = std::env::var("LINK_LOG") {
            env.push(("RUST_LOG", log));
        }
        let stack = Stack::start(&bins, &env, &[]).await?;
        let mut figures = Figures {
            cat_expected: size + lines,
            ..Figures::default()
        };
        let id = stack.create_session_id().await?;
        if let Err(err) = cat_and_exit(&stack, &id, setup, &file, &mut figures).await {
            figures.cat_end = format!("failed: {err:#}");
        }
        stack.end_session(&id).await;
        let id = stack.create_session_id().await?;
        let rounds = (args.flood_secs, args.interrupts.max(1));
        if let Err(err) = interrupt(&stack, &id, setup, rounds, &mut figures).await {
            figures.interrupt_failure = Some(format!("failed: {err:#}"));
        }
        stack.end_session(&id).await;
        let id = stack.create_session_id().await?;
        if let Err(err) = seq_wire(&stack, &id, setup, args.seq_lines, &mut figures).await {
            figures.seq_failure = Some(format!("failed: {err:#}"));
        }
        stack.end_session(&id).await;
        let load = tokio::time::timeout(QUIET_LIMIT, first_load(stack.http, setup.accept_encoding));
        figures.first_load = match load.await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => {
                eprintln!("{}: first page load failed: {err:#}", setup.name);
                0
            }
            Err(_) => {
                eprintln!(
                    "{}: the first page load got no answer within 30 s",
                    setup.name
                );
                0
            }
        };
        stack.stop().await;
        print_figures(setup.name, &figures);
        results.push((setup.name, figures));
    }
    print_table(&results);
    Ok(())
}

/// One setup's figures, as soon as they are measured.
fn print_figures(name: &str, f: &Figures) {
    println!(
        "{name}: cat {} of {} bytes in {:.1} s, exit {}, {}; Ctrl+C {:?} ms (raw, wire bytes after: {:?}) {}; seq {} wire for {} {}; first load {}",
        f.cat_delivered,
        f.cat_expected,
        f.cat_secs,
        f.cat_exit,
        f.cat_end,
        f.interrupts
            .iter()
            .map(|i| i.time.as_millis())
            .collect::<Vec<_>>(),
        f.interrupts
            .iter()
            .map(|i| (i.raw, i.wire))
            .collect::<Vec<_>>(),
        f.interrupt_failure.as_deref().unwrap_or(""),
        f.seq_wire,
        f.seq_raw,
        f.seq_failure.as_deref().unwrap_or(""),
        f.first_load
    );
}

fn print_table(results: &[(&str, Figures)]) {
    let [(_, now), (_, base)] = results else {
        return;
    };
    let rounds = now.interrupts.len();
    println!();
    println!("| figure | current | baseline (same run) | target |");
    println!("| --- | --- | --- | --- |");
    let cat = |f: &Figures| {
        format!(
            "{} of {} bytes, exit {}, {} ({:.1} s)",
            f.cat_delivered,
            f.cat_expected,
            if f.cat_exit { "seen" } else { "missing" },
            f.cat_end,
            f.cat_secs
        )
    };
    println!(
        "| 5 MB `cat`, then exit | {} | {} | every byte, exit, clean close |",
        cat(now),
        cat(base)
    );
    let interrupt = |f: &Figures| {
        if let Some(failure) = &f.interrupt_failure {
            return failure.clone();
        }
        let Some((median, worst)) = f.interrupt_summary() else {
            return "not measured".into();
        };
        format!(
            "median {} ms, worst {} ms; {} bytes after it ({} on the wire; worst {}, {})",
            median.time.as_millis(),
            worst.time.as_millis(),
            median.raw,
            median.wire,
            worst.raw,
            worst.wire
        )
    };
    println!(
        "| Ctrl+C in a `seq` flood ({rounds} times): prompt back | {} | {} | <= 300 ms |",
        interrupt(now),
        interrupt(base)
    );
    let wire = |f: &Figures| {
        if let Some(failure) = &f.seq_failure {
            return failure.clone();
        }
        format!(
            "{} bytes for {} printed ({:.2})",
            f.seq_wire,
            f.seq_raw,
            f.seq_wire as f64 / f.seq_raw.max(1) as f64
        )
    };
    println!(
        "| `seq 1 1000000` on the wire | {} | {} | <= 1/3 |",
        wire(now),
        wire(base)
    );
    println!(
        "| first page load on the wire | {} bytes | {} bytes | <= 250 KB |",
        now.first_load, base.first_load
    );
}

/// Writes lines of text up to `size` bytes; the number of lines.
fn write_text(path: &Path, size: u64) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let (mut written, mut lines) = (0u64, 0u64);
    while written < size {
        let line = format!(
            "{lines:08} the quick brown fox jumps over the lazy dog {}\n",
            lines % 97
        );
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        lines += 1;
    }
    out.flush()?;
    Ok(lines)
}

/// The page and everything it links, as a browser asking for
/// `accept_encoding` gets them: bytes of the bodies.
async fn first_load(addr: SocketAddr, accept_encoding: &str) -> anyhow::Result<u64> {
    let accept = [("Accept-Encoding", accept_encoding)];
    let (_, page) = http(addr, "GET", "/", &accept, "").await?;
    let (_, html) = http(addr, "GET", "/", &[], "").await?;
    let html = String::from_utf8_lossy(&html).into_owned();
    let mut total = page.len() as u64;
    for attribute in ["href=\"", "src=\""] {
        for part in html.split(attribute).skip(1) {
            let target = part.split('"').next().unwrap_or_default();
            if !target.contains("://") && !target.is_empty() {
                let path = format!("/{}", target.trim_start_matches('/'));
                total += http(addr, "GET", &path, &accept, "").await?.1.len() as u64;
            }
        }
    }
    Ok(total)
}

/// A terminal client reading as fast as the link allows, acknowledging
/// every frame.
struct Client {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    inflater: Option<Inflater>,
    raw: u64,
    wire: u64,
}

/// What the client read next.
enum Read {
    Output(Vec<u8>),
    Control(serde_json::Value),
    Closed(String),
}

impl Client {
    async fn attach(stack: &Stack, id: &str, deflate: bool) -> anyhow::Result<Self> {
        let url = format!("ws://{}/ws/sessions/{id}?cols=80&rows=24", stack.http);
        let mut request = url.into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {KEY}"))?,
        );
        if deflate {
            headers.insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        let mut client = Self {
            socket,
            inflater: deflate.then(Inflater::default),
            raw: 0,
            wire: 0,
        };
        client.type_text("PS1='re''ady> '\r").await?;
        client.wait_for(PROMPT.as_bytes()).await?;
        Ok(client)
    }

    async fn next(&mut self) -> anyhow::Result<Read> {
        loop {
            let next = tokio::time::timeout(QUIET_LIMIT, self.socket.next());
            let message = match next.await.context("nothing came for 30 s")? {
                None => return Ok(Read::Closed("ended without a close frame".into())),
                Some(Err(err)) => return Ok(Read::Closed(format!("failed: {err}"))),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Binary(frame) => {
                    self.wire += frame.len() as u64;
                    let data = match &mut self.inflater {
                        Some(inflater) => inflater.frame(&frame).map_err(anyhow::Error::msg)?,
                        None => frame.to_vec(),
                    };
                    self.raw += data.len() as u64;
                    let ack = serde_json::json!({"type": "ack", "bytes": self.raw}).to_string();
                    self.socket.send(Message::text(ack)).await?;
                    return Ok(Read::Output(data));
                }
                Message::Text(text) => return Ok(Read::Control(serde_json::from_str(&text)?)),
                Message::Close(frame) => {
                    let code = frame.map_or(0, |f| u16::from(f.code));
                    // Sends the answer to the close, then sees the stream end.
                    let ended = tokio::time::timeout(Duration::from_secs(5), async {
                        while let Some(Ok(_)) = self.socket.next().await {}
                    });
                    let how = match ended.await {
                        Ok(()) => format!("closed with {code}, handshake answered"),
                        Err(_) => format!("closed with {code}, the TCP stream stayed open"),
                    };
                    return Ok(Read::Closed(how));
                }
                _ => continue,
            }
        }
    }

    /// Reads until the output contains `needle`.
    async fn wait_for(&mut self, needle: &[u8]) -> anyhow::Result<()> {
        let mut tail = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            loop {
                match self.next().await? {
                    Read::Output(data) => {
                        tail.extend_from_slice(&data);
                        if memchr::memmem::find(&tail, needle).is_some() {
                            return Ok(());
                        }
                        tail.drain(..tail.len().saturating_sub(needle.len()));
                    }
                    Read::Control(_) => {}
                    Read::Closed(how) => bail!("the socket {how}"),
                }
            }
        })
        .await
        .with_context(|| format!("no {:?}", String::from_utf8_lossy(needle)))?
    }

    async fn type_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket
            .send(Message::binary(text.as_bytes().to_vec()))
            .await?;
        Ok(())
    }
}

/// `cat` of the file, then `exit 3`: bytes delivered, exit, how it ended.
async fn cat_and_exit(
    stack: &Stack,
    id: &str,
    setup: &Setup,
    file: &Path,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let mut client = Client::attach(stack, id, setup.deflate).await?;
    client
        .type_text(&format!("stty -echo; cat {}; exit 3\r", file.display()))
        .await?;
    let started = Instant::now();
    let before = client.raw;
    let end = tokio::time::timeout(DEADLINE, async {
        loop {
            match client.next().await? {
                Read::Control(value) if value["type"] == "exit" => {
                    figures.cat_exit = value["code"] == 3;
                }
                Read::Closed(how) => return anyhow::Ok(how),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(Ok("timed out".into()))?;
    figures.cat_secs = started.elapsed().as_secs_f64();
    // What the file printed, without the prompt's and echo's bytes around it.
    figures.cat_delivered = client.raw.saturating_sub(before).min(figures.cat_expected);
    figures.cat_end = end;
    Ok(())
}

/// Ctrl+C after a while of `seq`, `(flood seconds, rounds)` times: time to
/// the prompt and bytes after it.
async fn interrupt(
    stack: &Stack,
    id: &str,
    setup: &Setup,
    (flood_secs, rounds): (u64, usize),
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let mut client = Client::attach(stack, id, setup.deflate).await?;
    client.type_text("stty -echo\r").await?;
    client.wait_for(PROMPT.as_bytes()).await?;
    for _ in 0..rounds {
        client.type_text("seq 1 999999999\r").await?;
        let flood = Instant::now() + Duration::from_secs(flood_secs);
        while Instant::now() < flood {
            if let Read::Closed(how) = client.next().await? {
                figures.interrupt_failure = Some(format!("the socket {how} during the flood"));
                return Ok(());
            }
        }
        let (raw, wire) = (client.raw, client.wire);
        let sent = Instant::now();
        client.type_text("\x03").await?;
        let prompt = client.wait_for(PROMPT.as_bytes());
        tokio::time::timeout(QUIET_LIMIT, prompt)
            .await
            .context("no prompt within 30 s of the Ctrl+C")??;
        figures.interrupts.push(Interrupt {
            time: sent.elapsed(),
            raw: client.raw - raw,
            wire: client.wire - wire,
        });
    }
    figures.interrupts.sort_by_key(|i| i.time);
    Ok(())
}

/// `seq 1 lines`: bytes on the wire and bytes printed.
async fn seq_wire(
    stack: &Stack,
    id: &str,
    setup: &Setup,
    lines: u64,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let mut client = Client::attach(stack, id, setup.deflate).await?;
    client.type_text("stty -echo\r").await?;
    client.wait_for(PROMPT.as_bytes()).await?;
    let (raw, wire) = (client.raw, client.wire);
    client
        .type_text(&format!("seq 1 {lines}; echo seq''-end\r"))
        .await?;
    client.wait_for(b"seq-end").await?;
    figures.seq_raw = client.raw - raw;
    figures.seq_wire = client.wire - wire;
    Ok(())
}
