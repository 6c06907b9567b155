//! `dispatch-bench conversations`: generates a Claude Code home (by default
//! 10,000 conversations, about 2 GB of JSONL), starts the real
//! `dispatch-broker` binary on it and measures, through gRPC: the cold index
//! time (baseline: reading every byte once), warm list latency p50/p99
//! (baseline: the health check round trip), search latency, the broker's
//! memory after indexing (baseline: a broker over an empty home) and the
//! delay from an append to its watch event.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dispatch_proto::v1 as pb;
use dispatch_testkit::{Spec, generate, iso_timestamp};
use futures::StreamExt;
use pb::conversations_client::ConversationsClient;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const TOKEN: &str = "bench-token-0123456789abcdef";

/// Options of the conversations benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Number of conversations to generate.
    #[arg(long, default_value_t = 10_000)]
    conversations: usize,
    /// Approximate total size of the transcripts, in MB.
    #[arg(long, default_value_t = 2000)]
    total_mb: u64,
    /// Prompt/response turns per conversation.
    #[arg(long, default_value_t = 4)]
    turns: usize,
    /// Folder for the generated home (default: a temporary one, removed).
    #[arg(long, env = "BENCH_CLAUDE_HOME")]
    home: Option<PathBuf>,
    /// The dispatch-broker binary (default: the one beside this executable).
    #[arg(long, env = "DISPATCH_BROKER_BIN")]
    broker_bin: Option<PathBuf>,
    /// List calls measured.
    #[arg(long, default_value_t = 500)]
    list_calls: usize,
    /// Appends measured.
    #[arg(long, default_value_t = 20)]
    appends: usize,
}

struct Broker {
    child: Child,
    _pty_root: tempfile::TempDir,
    client: ConversationsClient<Channel>,
    channel: Channel,
}

impl Broker {
    async fn start(bin: &Path, home: &Path) -> anyhow::Result<Self> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let pty_root = tempfile::tempdir()?;
        let child = Command::new(bin)
            .env("BROKER_LISTEN", format!("127.0.0.1:{port}"))
            .env("BROKER_TOKEN", TOKEN)
            .env("CLAUDE_HOME", home)
            .env("PTY_ROOT", pty_root.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => bail!("the broker did not listen: {e}"),
            }
        };
        let client = ConversationsClient::new(channel.clone()).max_decoding_message_size(64 << 20);
        Ok(Self {
            child,
            _pty_root: pty_root,
            client,
            channel,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {TOKEN}").parse().expect("ascii"),
        );
        request
    }

    async fn status(&mut self) -> anyhow::Result<pb::IndexStatus> {
        let request = self.request(pb::GetIndexStatusRequest {});
        Ok(self.client.get_index_status(request).await?.into_inner())
    }

    /// Resident and peak memory, in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let pid = self.child.id().unwrap_or(0);
        let field = |name: &str| {
            dispatch_testkit::process::status_kib(pid, name).map_or(0.0, |kb| kb as f64 / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn read_all(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            total += read_all(&path)?;
        } else if meta.is_file() {
            total += std::fs::read(&path)?.len() as u64;
        }
    }
    Ok(total)
}

fn broker_bin(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &args.broker_bin {
        return Ok(bin.clone());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("dispatch-broker");
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p dispatch-broker) or set DISPATCH_BROKER_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = broker_bin(&args)?;
    let temp = tempfile::tempdir()?;
    let home = args
        .home
        .clone()
        .unwrap_or_else(|| temp.path().join("claude"));
    // Each tool result is written twice (in the message and in `toolUseResult`).
    let per_result = (args.total_mb * 1_000_000
        / args.conversations.max(1) as u64
        / (2 * args.turns as u64)) as usize;
    let spec = Spec {
        conversations: args.conversations,
        projects: 50,
        turns: args.turns,
        pad_bytes: per_result.saturating_sub(2000),
        damage: true,
        ..Spec::default()
    };
    println!(
        "dispatch-bench conversations: {} conversations, ~{} MB, broker {}",
        args.conversations,
        args.total_mb,
        bin.display()
    );
    let started = Instant::now();
    let manifest = tokio::task::spawn_blocking({
        let home = home.clone();
        move || generate(&home, &spec)
    })
    .await??;
    println!(
        "generated {} transcripts, {:.0} MB in {:.1} s",
        manifest.transcripts,
        manifest.total_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // Baseline: read every byte once (page cache warm after generation).
    let started = Instant::now();
    let read = read_all(&home.join("projects"))?;
    let read_time = started.elapsed();

    // An idle broker over an empty home: the memory baseline.
    let empty = tempfile::tempdir()?;
    let mut idle = Broker::start(&bin, empty.path()).await?;
    wait_indexed(&mut idle, 0).await?;
    let (idle_rss, _) = idle.memory_mib();
    drop(idle);

    // Cold index.
    let started = Instant::now();
    let mut broker = Broker::start(&bin, &home).await?;
    let status = wait_indexed(&mut broker, manifest.conversations.len() as u32).await?;
    let index_time = started.elapsed();
    let (rss, peak) = broker.memory_mib();
    println!();
    println!("| figure | value | baseline (same run) | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| cold index, {} conversations, {:.0} MB | {:.2} s | reading every byte once: {:.2} s | {:.1}x |",
        status.conversations,
        status.bytes as f64 / 1e6,
        index_time.as_secs_f64(),
        read_time.as_secs_f64(),
        index_time.as_secs_f64() / read_time.as_secs_f64().max(1e-9)
    );
    let _ = read;
    println!(
        "| broker memory after indexing (RSS) | {rss:.1} MiB (peak {peak:.1} MiB) | idle broker, empty home: {idle_rss:.1} MiB | {:.1}x |",
        rss / idle_rss.max(1.0)
    );

    // Warm list latency, against a health-check round trip.
    let mut health = status_round_trips(&broker).await;
    let mut lists = Vec::with_capacity(args.list_calls);
    let mut filtered = Vec::with_capacity(args.list_calls);
    for i in 0..args.list_calls {
        let started = Instant::now();
        let req = broker.request(pb::ListConversationsRequest {
            page_size: 50,
            ..Default::default()
        });
        broker.client.list_conversations(req).await?;
        lists.push(started.elapsed());
        let started = Instant::now();
        let text = format!("task {}", i % 100);
        let req = broker.request(pb::ListConversationsRequest {
            page_size: 50,
            text,
            ..Default::default()
        });
        broker.client.list_conversations(req).await?;
        filtered.push(started.elapsed());
    }
    let health_p50 = percentile(&mut health, 0.5);
    println!(
        "| warm list (50 of {}), p50 / p99 | {} / {} | index status call p50: {} | {:.1}x |",
        status.conversations,
        ms(percentile(&mut lists, 0.5)),
        ms(percentile(&mut lists, 0.99)),
        ms(health_p50),
        percentile(&mut lists, 0.5).as_secs_f64() / health_p50.as_secs_f64().max(1e-9)
    );
    println!(
        "| warm list with a text filter, p50 / p99 | {} / {} | | |",
        ms(percentile(&mut filtered, 0.5)),
        ms(percentile(&mut filtered, 0.99))
    );
    usage_latency(&mut broker, args.list_calls, &mut lists, &status).await?;

    // Search.
    let middle = &manifest.conversations[manifest.conversations.len() / 2];
    let (unique, hits) = search(&mut broker, &middle.marker, "", 10).await?;
    let (common, common_hits) = search(&mut broker, "formatdate", "", 100).await?;
    let (within, within_hits) = search(&mut broker, "step", &middle.id, 1000).await?;
    let (scan_all, none) = search(&mut broker, "no-such-word-anywhere", "", 10).await?;
    println!(
        "| search across all, a word in one conversation ({hits} hit) | {} | reading every byte once: {:.2} s | |",
        ms(unique),
        read_time.as_secs_f64()
    );
    println!(
        "| search across all, no match ({none} hits, every file screened) | {} | | {:.1}x |",
        ms(scan_all),
        scan_all.as_secs_f64() / read_time.as_secs_f64().max(1e-9)
    );
    println!(
        "| search across all, a common word (first {common_hits} hits) | {} | | |",
        ms(common)
    );
    println!(
        "| search within one conversation ({within_hits} hits) | {} | | |",
        ms(within)
    );

    // Append to watch event.
    let mut delays = Vec::new();
    let req = broker.request(pb::WatchConversationsRequest {});
    let mut events = broker.client.watch_conversations(req).await?.into_inner();
    for i in 0..args.appends {
        let target = &manifest.conversations[(i * 7919) % manifest.conversations.len()];
        let line = serde_json::json!({
            "type": "user", "cwd": target.project, "sessionId": target.id, "uuid": format!("bench-{i}"),
            "timestamp": iso_timestamp(target.last_ms + 1000 * (i as i64 + 1)),
            "message": {"role": "user", "content": format!("bench append {i}")},
        });
        let started = Instant::now();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&target.path)?;
        writeln!(file, "{line}")?;
        drop(file);
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), events.next())
                .await
                .context("no watch event within 30 s")?
                .context("watch ended")??;
            if event.id == target.id {
                delays.push(started.elapsed());
                break;
            }
        }
    }
    println!(
        "| append to watch event, p50 / p99 ({} appends) | {} / {} | debounce: 50 ms | |",
        args.appends,
        ms(percentile(&mut delays, 0.5)),
        ms(percentile(&mut delays, 0.99))
    );
    let (rss_after, _) = broker.memory_mib();
    println!("| broker memory at the end (RSS) | {rss_after:.1} MiB | | |");
    drop(broker);
    Ok(())
}

/// Round trips of the cheapest call, as the latency baseline.
/// Usage reports (per day in a time zone, per project) beside the warm
/// list's p50/p99 measured just before, and the usage counters' memory.
/// Skipped for a broker without `GetUsage` (a build before it).
async fn usage_latency(
    broker: &mut Broker,
    calls: usize,
    lists: &mut [Duration],
    status: &pb::IndexStatus,
) -> anyhow::Result<()> {
    let list = format!(
        "warm list p50 / p99: {} / {}",
        ms(percentile(lists, 0.5)),
        ms(percentile(lists, 0.99))
    );
    for (group_by, tz, what) in [
        (
            pb::UsageGroupBy::Day,
            "Europe/Berlin",
            "per day (Europe/Berlin)",
        ),
        (pb::UsageGroupBy::Project, "", "per project"),
    ] {
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            let req = broker.request(pb::UsageRequest {
                group_by: group_by as i32,
                time_zone: tz.to_owned(),
                ..Default::default()
            });
            match broker.client.get_usage(req).await {
                Ok(_) => samples.push(started.elapsed()),
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    println!("| usage report | not served by this broker | | |");
                    return Ok(());
                }
                Err(s) => bail!("usage report: {s}"),
            }
        }
        println!(
            "| usage report {what}, all time, {} conversations, p50 / p99 | {} / {} | {list} | {:.1}x |",
            status.conversations,
            ms(percentile(&mut samples, 0.5)),
            ms(percentile(&mut samples, 0.99)),
            percentile(&mut samples, 0.5).as_secs_f64()
                / percentile(lists, 0.5).as_secs_f64().max(1e-9)
        );
    }
    let usage_mib = status.usage_bytes as f64 / (1024.0 * 1024.0);
    let (rss, _) = broker.memory_mib();
    println!(
        "| usage counters (heap) | {usage_mib:.2} MiB | broker RSS now: {rss:.1} MiB, without them: {:.1} MiB | {:.1}% |",
        rss - usage_mib,
        100.0 * usage_mib / rss.max(1e-9)
    );
    Ok(())
}

async fn status_round_trips(broker: &Broker) -> Vec<Duration> {
    let mut client = ConversationsClient::new(broker.channel.clone());
    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        if client
            .get_index_status(broker.request(pb::GetIndexStatusRequest {}))
            .await
            .is_ok()
        {
            samples.push(started.elapsed());
        }
    }
    samples
}

async fn wait_indexed(broker: &mut Broker, conversations: u32) -> anyhow::Result<pb::IndexStatus> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Ok(status) = broker.status().await
            && status.scans >= 1
            && status.conversations >= conversations
        {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("the index did not finish in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Median of three searches, and the hit count.
async fn search(
    broker: &mut Broker,
    query: &str,
    conversation: &str,
    limit: u32,
) -> anyhow::Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut hits = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let req = broker.request(pb::SearchConversationsRequest {
            query: query.to_owned(),
            conversation_id: conversation.to_owned(),
            limit,
        });
        let mut stream = broker.client.search_conversations(req).await?.into_inner();
        hits = 0;
        while let Some(hit) = stream.next().await {
            hit?;
            hits += 1;
        }
        times.push(started.elapsed());
    }
    Ok((percentile(&mut times, 0.5), hits))
}
