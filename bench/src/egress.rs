//! `dispatch-bench egress`: a download through the gateway's egress proxy
//! beside the same download straight from the server, in the same run.
//!
//! It starts the real `dispatch-broker` (a known token, a Unix socket) and
//! `dispatch-gateway` in front of it with `EGRESS_LISTEN` on loopback, creates
//! a session and uses that session's proxy credentials (derived from the
//! token as the broker derives them). A raw TCP server on loopback sends
//! `--mb` megabytes to every connection; the client reads them straight
//! from it, then through `CONNECT localhost:<port>` on the proxy, rounds
//! alternating. It also times tunnel set-up (`CONNECT` to `200`, which asks
//! the broker whether the session runs) against a plain TCP connect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine;
use dispatch_proto::egress::EgressKey;
use dispatch_testkit::announce;

use crate::stack::{Binaries, Stack, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Options of the egress benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Megabytes downloaded per round.
    #[arg(long, default_value_t = 100)]
    mb: u64,
    /// Rounds of each download (alternating direct and proxied).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Tunnels opened one after another for the set-up figure.
    #[arg(long, default_value_t = 200)]
    connects: usize,
    /// The dispatch-gateway binary (default: the one beside this executable);
    /// dispatch-broker is taken from beside it.
    #[arg(long, env = "DISPATCH_GATEWAY_BIN")]
    gateway_bin: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bins = Binaries::find(args.gateway_bin.as_deref())?;
    let bytes = args.mb * 1_000_000;
    let server = serve_bytes(bytes).await?;
    let env = [
        ("EGRESS_LISTEN", "127.0.0.1:0".to_owned()),
        ("EGRESS_ALLOW", "localhost".to_owned()),
        ("EGRESS_PORTS", server.port().to_string()),
    ];
    let stack = Stack::start(&bins, &env, &[announce::GATEWAY_EGRESS]).await?;
    let egress = announce::socket_addr(&stack.announced[0]).context("no egress address")?;
    let session = stack.create_session_id().await?;
    let secret = EgressKey::derive(TOKEN).secret(&session);
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{session}:{secret}"));
    let proxy = Proxy {
        addr: egress,
        target: format!("localhost:{}", server.port()),
        authorization: format!("Basic {credentials}"),
    };
    println!(
        "egress proxy: {} MB per download, {} rounds, {} tunnel set-ups\n",
        args.mb, args.rounds, args.connects
    );
    let (mut direct, mut proxied, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        direct.push(download(TcpStream::connect(server).await?, bytes).await?);
        let before = cpu_seconds(stack.gateway_pid());
        proxied.push(download(proxy.open().await?, bytes).await?);
        cpu.push(cpu_seconds(stack.gateway_pid()) - before);
    }
    let (direct_median, proxied_median) = (percentile(&direct, 50.0), percentile(&proxied, 50.0));
    println!(
        "{:<48} {:>9.1} MB/s ({:.2}x)   direct: {:.1} MB/s   (medians of {}; all: proxied {}, direct {})",
        format!("download of {} MB through the proxy", args.mb),
        proxied_median,
        proxied_median / direct_median,
        direct_median,
        args.rounds,
        list(&proxied),
        list(&direct),
    );
    let cpu_per_mb = cpu.iter().sum::<f64>() / cpu.len() as f64 / args.mb as f64 * 1000.0;
    println!(
        "{:<48} {:>9.2} ms per MB",
        "gateway CPU while relaying", cpu_per_mb
    );
    let plain = connect_times(args.connects, || async {
        TcpStream::connect(server)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let tunnel = connect_times(args.connects, || async { proxy.open().await.map(drop) }).await?;
    println!(
        "{:<48} p50 {:.3} ms, p99 {:.3} ms   TCP connect: p50 {:.3} ms, p99 {:.3} ms",
        "tunnel set-up (CONNECT to 200)",
        percentile(&tunnel, 50.0),
        percentile(&tunnel, 99.0),
        percentile(&plain, 50.0),
        percentile(&plain, 99.0),
    );
    stack.stop().await;
    Ok(())
}

fn list(values: &[f64]) -> String {
    let values: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    values.join("/")
}

/// A server on loopback that sends `bytes` to every connection, then closes.
async fn serve_bytes(bytes: u64) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        while let Ok((mut stream, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// Reads `bytes` from `stream` to its end; MB/s.
async fn download(mut stream: TcpStream, bytes: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut buffer = vec![0; 256 * 1024];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    if received != bytes {
        bail!("received {received} bytes of {bytes}");
    }
    Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// Milliseconds of `count` calls of `open`, one after another.
async fn connect_times<F, Fut>(count: usize, mut open: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        open().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((p / 100.0) * (sorted.len().max(1) - 1) as f64).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

/// The proxy and the session's credentials.
struct Proxy {
    addr: SocketAddr,
    target: String,
    authorization: String,
}

impl Proxy {
    /// A tunnel to the server, after the proxy's `200`.
    async fn open(&self) -> anyhow::Result<TcpStream> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let _ = stream.set_nodelay(true);
        let head = format!(
            "CONNECT {0} HTTP/1.1\r\nHost: {0}\r\nProxy-Authorization: {1}\r\n\r\n",
            self.target, self.authorization
        );
        stream.write_all(head.as_bytes()).await?;
        let mut answer = Vec::new();
        let mut byte = [0];
        while !answer.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 {
                bail!("the proxy closed: {}", String::from_utf8_lossy(&answer));
            }
            answer.push(byte[0]);
        }
        if !answer.starts_with(b"HTTP/1.1 200 ") {
            bail!("the proxy refused: {}", String::from_utf8_lossy(&answer));
        }
        Ok(stream)
    }
}

/// The user plus system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}
