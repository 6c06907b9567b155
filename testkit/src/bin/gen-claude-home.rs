//! Writes a synthetic Claude Code home, e.g. for benchmarks:
//! `gen-claude-home --conversations 10000 --pad-bytes 180000 /tmp/claude`.

use std::path::PathBuf;

use clap::Parser;
use dispatch_testkit::{Spec, generate};

/// Generates a synthetic CLAUDE_HOME following the transcript format.
#[derive(Parser)]
struct Args {
    /// Folder to create (becomes the CLAUDE_HOME).
    out: PathBuf,
    /// Number of conversations.
    #[arg(long, default_value_t = 100)]
    conversations: usize,
    /// Number of project folders they are spread over.
    #[arg(long, default_value_t = 10)]
    projects: usize,
    /// Prompt/response turns per conversation.
    #[arg(long, default_value_t = 4)]
    turns: usize,
    /// Filler bytes added to each tool result, to reach a target size.
    #[arg(long, default_value_t = 0)]
    pad_bytes: usize,
    /// Leave out the corrupt lines, broken links and other damage.
    #[arg(long)]
    clean: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = Spec {
        seed: args.seed,
        conversations: args.conversations,
        projects: args.projects.max(1),
        turns: args.turns.max(1),
        pad_bytes: args.pad_bytes,
        damage: !args.clean,
        ..Spec::default()
    };
    let manifest = generate(&args.out, &spec)?;
    println!(
        "{} conversations, {} bytes in {}",
        manifest.conversations.len(),
        manifest.total_bytes,
        args.out.display()
    );
    Ok(())
}
