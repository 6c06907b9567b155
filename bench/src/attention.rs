//! `dispatch-bench attention-scan`: the broker's attention scanner (bell
//! and notification sequences, see `dispatch_broker::session::attention`)
//! over bulk output in read-sized chunks, beside two baselines measured in
//! the same run: the copy every published read already costs, and a bare
//! `memchr2` pass for the same two bytes. Plain text and colourful text
//! (an escape every few bytes) are measured apart.

use std::hint::black_box;
use std::time::{Duration, Instant};

use dispatch_broker::session::READ_CHUNK;
use dispatch_broker::session::attention::Scanner;

/// Options of the scanner benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Output scanned per kind, in MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let size = args.size_mib << 20;
    for (kind, line) in [
        (
            "plain text",
            "the quick brown fox jumps over the lazy dog 0123456789\r\n".to_owned(),
        ),
        (
            "colourful text",
            "\x1b[31mred\x1b[m \x1b[1;32mbold green\x1b[m \x1b[38;5;208mx\x1b[m\r\n".to_owned(),
        ),
    ] {
        let output = line.repeat(size / line.len() + 1);
        let output = &output.as_bytes()[..size];
        println!(
            "{kind}, {} MiB in {} KiB reads:",
            args.size_mib,
            READ_CHUNK >> 10
        );
        let copy = time(output, |chunk| black_box(chunk.to_vec()).len());
        let bare = time(output, |chunk| {
            memchr::memchr2_iter(0x07, 0x1b, chunk).count()
        });
        let mut scanner = Scanner::default();
        let scan = time(output, |chunk| usize::from(scanner.scan(chunk).is_some()));
        report("copy of each read (baseline)", size, copy);
        report("memchr2 for BEL and ESC (baseline)", size, bare);
        report("attention scanner", size, scan);
    }
    Ok(())
}

/// The time `step` takes over every read-sized chunk of `output`.
fn time(output: &[u8], mut step: impl FnMut(&[u8]) -> usize) -> Duration {
    let start = Instant::now();
    let mut total = 0;
    for chunk in output.chunks(READ_CHUNK) {
        total += step(black_box(chunk));
    }
    black_box(total);
    start.elapsed()
}

fn report(what: &str, bytes: usize, took: Duration) {
    let gib_s = bytes as f64 / took.as_secs_f64() / f64::from(1u32 << 30);
    println!(
        "  {what:<38} {:>8.1} ms  {gib_s:>6.2} GiB/s",
        took.as_secs_f64() * 1e3
    );
}
