//! dispatch benchmarks. Each subcommand prints its figures beside a baseline
//! measured in the same run, so ratios stay meaningful on a loaded machine.

mod attention;
mod broker;
mod conversations;
mod egress;
mod files;
mod gateway;
mod link;
mod pages;
mod stack;

use clap::{Parser, Subcommand};

/// Runs one benchmark.
#[derive(Parser)]
#[command(name = "dispatch-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The broker's attention scanner (bell and notification sequences)
    /// over bulk output, beside a copy and a bare memchr pass.
    AttentionScan(attention::Args),
    /// The PTY broker over gRPC beside a raw PTY: output throughput,
    /// keystroke echo, session creation, memory per idle session, and 1,000
    /// sessions created and ended (descriptors, processes, memory).
    Broker(broker::Options),
    /// The conversation index of dispatch-broker over a generated Claude
    /// Code home: cold index time, list and search latency, memory, and the
    /// delay from an append to its watch event.
    Conversations(conversations::Args),
    /// A 100 MB download through the gateway's egress proxy beside the
    /// same download straight from the server, and tunnel set-up time.
    Egress(egress::Args),
    /// A large file uploaded into a session and downloaded from it through
    /// the gateway and broker, beside the same bytes written and read
    /// straight; the gateway's peak memory meanwhile.
    Files(files::Args),
    /// The whole path client, dispatch-gateway, dispatch-broker, PTY and
    /// back: output throughput, keystroke echo, memory per idle viewer and
    /// many concurrent viewers, beside a raw PTY and a bare WebSocket echo.
    Gateway(gateway::Args),
    /// dispatch on a 4 Mbit/s link (a network namespace shaped with `tc`;
    /// needs root): a 5 MB `cat` and its exit, Ctrl+C during a flood, the
    /// bytes of `seq 1 1000000` and of the first page load on the wire,
    /// beside the fixed window without compression.
    Link(link::Args),
    /// The first, middle and last page of a large transcript's messages,
    /// read by the broker's paged reader beside the whole-file reader.
    MessagePages(pages::Args),
}

/// The benchmark runs as a spawned task, on the runtime's worker threads
/// like the gateway's streams, rather than on the blocked main thread:
/// waking the main thread for every message would be the client's cost,
/// not the server's.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    tokio::spawn(async move {
        match command {
            Command::AttentionScan(args) => attention::run(args),
            Command::Broker(options) => broker::run(options).await,
            Command::Conversations(args) => conversations::run(args).await,
            Command::Egress(args) => egress::run(args).await,
            Command::Files(args) => files::run(args).await,
            Command::Gateway(args) => gateway::run(args).await,
            Command::Link(args) => link::run(args).await,
            Command::MessagePages(args) => pages::run(args),
        }
    })
    .await?
}
