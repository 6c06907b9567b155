//! `dispatch-bench files`: a large file uploaded into a session and
//! downloaded from it through `dispatch-gateway` and `dispatch-broker`,
//! beside the same bytes written to and read from a file of that folder
//! straight, in the same run; with the gateway's peak resident memory while
//! it relays (it holds a few chunks, never the file).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stack::{Binaries, KEY, Stack};

const MIB: u64 = 1 << 20;

/// Options of the files benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// MiB per transfer.
    #[arg(long, default_value_t = 200)]
    mib: u64,
    /// Rounds of each transfer.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The dispatch-gateway binary (default: the one beside this executable);
    /// dispatch-broker is taken from beside it.
    #[arg(long, env = "DISPATCH_GATEWAY_BIN")]
    gateway_bin: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bins = Binaries::find(args.gateway_bin.as_deref())?;
    let env = [("MAX_UPLOAD_BYTES", ((args.mib + 1) * MIB).to_string())];
    let stack = Stack::start(&bins, &env, &[]).await?;
    let session = stack.create_session().await?;
    let dir = PathBuf::from(session["cwd"].as_str().context("no cwd")?);
    let session = session["id"].as_str().context("no id")?.to_owned();
    let bytes = args.mib * MIB;
    let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let pid = stack.gateway_pid();
    println!(
        "session files: {} MiB per transfer, {} rounds; gateway RSS at rest {} MiB\n",
        args.mib,
        args.rounds,
        rss_kib(pid) / 1024
    );
    let (mut plain_write, mut plain_read, mut up, mut down) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut peak = 0;
    for round in 0..args.rounds {
        let direct = dir.join(format!("direct-{round}.bin"));
        plain_write.push(write_file(&direct, &chunk, bytes).await?);
        plain_read.push(read_file(&direct, bytes).await?);
        let sampler = Sampler::start(pid);
        let name = format!("uploaded-{round}.bin");
        up.push(
            Transfers(&stack)
                .upload(&session, &name, &chunk, bytes)
                .await?,
        );
        down.push(Transfers(&stack).download(&session, &name, bytes).await?);
        peak = peak.max(sampler.stop().await);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    for (what, through, straight, label) in [
        (
            "upload (PUT) through gateway and broker",
            median(&mut up),
            median(&mut plain_write),
            "file write",
        ),
        (
            "download (GET) through gateway and broker",
            median(&mut down),
            median(&mut plain_read),
            "file read",
        ),
    ] {
        println!(
            "{what:<44} {through:>8.1} MB/s ({:.2}x)   straight {label}: {straight:.1} MB/s",
            through / straight
        );
    }
    println!(
        "{:<44} {:>8} MiB",
        "gateway peak RSS while relaying",
        peak / 1024
    );
    stack.stop().await;
    Ok(())
}

/// Writes `bytes` of `chunk` to `path`; MB/s.
async fn write_file(path: &Path, chunk: &[u8], bytes: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut file = tokio::fs::File::create(path).await?;
    for _ in 0..bytes / MIB {
        file.write_all(chunk).await?;
    }
    file.flush().await?;
    Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// Reads `path` to its end; MB/s.
async fn read_file(path: &Path, bytes: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut file = tokio::fs::File::open(path).await?;
    let read = drain(&mut file).await?;
    if read != bytes {
        bail!("read {read} bytes of {bytes}");
    }
    Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
}

async fn drain(reader: &mut (impl AsyncReadExt + Unpin)) -> anyhow::Result<u64> {
    let mut buffer = vec![0; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

fn rss_kib(pid: u32) -> u64 {
    dispatch_testkit::process::rss_kib(pid).unwrap_or(0)
}

/// The peak RSS of a process, sampled every 20 ms until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        });
        Self { stop, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or(0)
    }
}

/// Transfers through the stack's file routes.
struct Transfers<'a>(&'a Stack);

impl Transfers<'_> {
    /// Sends a request and reads the whole answer (HTTP/1.0: no chunking).
    async fn exchange(
        &self,
        head: &str,
        body: Option<(&[u8], u64)>,
    ) -> anyhow::Result<(String, u64)> {
        let mut stream = TcpStream::connect(self.0.http).await?;
        let _ = stream.set_nodelay(true);
        stream.write_all(head.as_bytes()).await?;
        if let Some((chunk, bytes)) = body {
            for _ in 0..bytes / MIB {
                stream.write_all(chunk).await?;
            }
        }
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 {
                bail!("closed: {}", String::from_utf8_lossy(&head));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            bail!("refused: {head}");
        }
        Ok((head, drain(&mut stream).await?))
    }

    /// Uploads `bytes` of `chunk`; MB/s.
    async fn upload(
        &self,
        session: &str,
        name: &str,
        chunk: &[u8],
        bytes: u64,
    ) -> anyhow::Result<f64> {
        let started = Instant::now();
        let head = format!(
            "PUT /api/sessions/{session}/files/content?path={name} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {bytes}\r\n\r\n",
            self.0.http
        );
        self.exchange(&head, Some((chunk, bytes))).await?;
        Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
    }

    /// Downloads a file; MB/s.
    async fn download(&self, session: &str, name: &str, bytes: u64) -> anyhow::Result<f64> {
        let started = Instant::now();
        let head = format!(
            "GET /api/sessions/{session}/files/content?path={name} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {KEY}\r\n\r\n",
            self.0.http
        );
        let (_, received) = self.exchange(&head, None).await?;
        if received != bytes {
            bail!("downloaded {received} bytes of {bytes}");
        }
        Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
    }
}
