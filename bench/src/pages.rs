//! `dispatch-bench message-pages`: one large generated transcript (about
//! 100 MB by default) and the first, middle and last page of its messages,
//! read by the broker's paged reader (a cached line map, then only the
//! page's lines) beside the whole-file reader as the baseline (parse every
//! message, then cut the page). Reports the time of each read and, for the
//! first read of each kind, the peak memory growth of a fresh process doing
//! only that read (this executable run again with `--one`).

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dispatch_broker::conversations::{Cursor, MessageMaps, page, read_messages};
use dispatch_testkit::{Spec, generate};

/// Options of the message page benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Approximate size of the transcript, in MB.
    #[arg(long, default_value_t = 100)]
    size_mb: u64,
    /// Messages per page.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Folder for the generated home (default: a temporary one, removed).
    #[arg(long, env = "BENCH_CLAUDE_HOME")]
    home: Option<PathBuf>,
    /// Internal: read one page of this transcript in this process and print
    /// the figures (`whole` or `paged`, then the cursor).
    #[arg(long, num_args = 3, value_names = ["TRANSCRIPT", "READER", "CURSOR"], hide = true)]
    one: Option<Vec<String>>,
}

/// Resident and peak memory of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let pid = std::process::id();
    let field = |name: &str| dispatch_testkit::process::status_kib(pid, name).unwrap_or(0);
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `read` and returns its time and how far the peak memory rose above
/// the resident memory before it, in MiB.
fn measure<T>(read: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, Duration, f64)> {
    let (before, _) = memory_kib();
    let started = Instant::now();
    let value = read()?;
    let elapsed = started.elapsed();
    let (_, peak) = memory_kib();
    Ok((value, elapsed, peak.saturating_sub(before) as f64 / 1024.0))
}

/// One read in this process: prints its time (ms), peak growth (MiB), and
/// for the paged reader the time of a second request and its lines read.
fn one(args: &Args, one: &[String]) -> anyhow::Result<()> {
    let [path, reader, cursor] = one else {
        bail!("--one takes a transcript, a reader and a cursor");
    };
    let path = PathBuf::from(path);
    let cursor = Cursor::parse(cursor).context("cursor")?;
    match reader.as_str() {
        "whole" => {
            let (_, time, peak) = measure(|| Ok(page(read_messages(&path)?, cursor, args.limit)))?;
            println!("{} {peak}", time.as_secs_f64() * 1000.0);
        }
        "paged" => {
            let maps = MessageMaps::default();
            let (_, time, peak) = measure(|| Ok(maps.page(&path, cursor, args.limit)?))?;
            let started = Instant::now();
            let warm = maps.page(&path, cursor, args.limit)?;
            let warm_time = started.elapsed();
            println!(
                "{} {peak} {} {}",
                time.as_secs_f64() * 1000.0,
                warm_time.as_secs_f64() * 1000.0,
                warm.lines_read
            );
        }
        other => bail!("unknown reader {other:?}"),
    }
    Ok(())
}

/// Runs [`one`] in a fresh process and returns its figures.
fn in_child(
    path: &std::path::Path,
    reader: &str,
    cursor: Cursor,
    limit: u32,
) -> anyhow::Result<Vec<f64>> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["message-pages", "--limit", &limit.to_string(), "--one"])
        .arg(path)
        .args([reader, &cursor.encode()])
        .output()?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(one_read) = &args.one {
        return one(&args, one_read);
    }
    let temp = tempfile::tempdir()?;
    let home = args.home.clone().unwrap_or_else(|| temp.path().to_owned());
    // About 20 KB per turn with 8 KB of tool output.
    let turns = (args.size_mb * 1_000_000 / 20_000).max(1) as usize;
    let spec = Spec {
        conversations: 1,
        turns,
        pad_bytes: 8000,
        damage: false,
        ..Spec::default()
    };
    let manifest = generate(&home, &spec)?;
    let expected = &manifest.conversations[0];
    let path = &expected.path;
    let size = std::fs::metadata(path)?.len();
    let total = expected.message_count;
    println!(
        "transcript: {:.1} MB, {total} messages, pages of {}",
        size as f64 / 1e6,
        args.limit
    );
    println!();
    println!(
        "| page | whole-file reader (baseline), every request: time, peak memory growth | paged reader, first request (builds the line map): time, peak memory growth | paged reader, next requests: time (lines read) |"
    );
    println!("| --- | --- | --- | --- |");
    let pages = [
        ("first", Cursor::After(0)),
        ("middle", Cursor::After(total / 2)),
        ("last", Cursor::Before(u32::MAX)),
    ];
    for (name, cursor) in pages {
        let whole = page(read_messages(path)?, cursor, args.limit);
        let paged = MessageMaps::default().page(path, cursor, args.limit)?;
        if paged.response != whole {
            bail!("the paged reader differs from the whole-file reader on the {name} page");
        }
        let w = in_child(path, "whole", cursor, args.limit)?;
        let p = in_child(path, "paged", cursor, args.limit)?;
        let [w_time, w_peak] = w[..] else {
            bail!("unexpected figures {w:?}");
        };
        let [p_time, p_peak, warm_time, lines] = p[..] else {
            bail!("unexpected figures {p:?}");
        };
        println!(
            "| {name} | {w_time:.0} ms, {w_peak:.1} MiB | {p_time:.0} ms, {p_peak:.1} MiB | {warm_time:.1} ms ({lines} lines) |"
        );
    }
    let mut file = File::open(path)?;
    let map = MessageMaps::default().map(path, &mut file)?;
    println!();
    println!(
        "line map: {:.2} MiB for {:.1} MB of transcript",
        map.heap_bytes() as f64 / (1024.0 * 1024.0),
        size as f64 / 1e6
    );
    Ok(())
}
