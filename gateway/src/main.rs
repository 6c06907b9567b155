//! `dispatch-gateway`: parses flags and environment, sets up logging, and runs
//! the gateway (or its health check) over `dispatch_gateway`.

use std::io::Write;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use dispatch_gateway::{Config, Gateway};
use tokio::signal::unix::{SignalKind, signal};

/// The internet-facing half of dispatch: HTTP, WebSockets, authentication and
/// the web UI, in front of dispatch-broker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Exit 0 when the gateway on the configured HOST and PORT answers /healthz.
    Healthcheck,
    /// Stop dispatch for good: the gateway running the local broker of
    /// STATE_DIR, that broker, and every session in it.
    Stop,
}

fn main() -> std::process::ExitCode {
    // First thing: no other process of this user (a program in a session)
    // may read this one's memory, environment or open files through /proc
    // or ptrace. See docs/security.md.
    let private = nix::sys::prctl::set_dumpable(false);
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(&cli.config.log_format);
    if let Some(variable) = secret_on_command_line(&matches) {
        eprintln!(
            "ERROR: {variable} was given on the command line, which every local user can read \
             (ps, /proc/<pid>/cmdline); set the {variable} environment variable instead"
        );
        return std::process::ExitCode::FAILURE;
    }
    if let Err(e) = private {
        tracing::warn!(
            "cannot make the process non-dumpable: {e}; /proc/<pid>/environ stays readable by this user"
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ERROR: starting the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Healthcheck) => {
                dispatch_gateway::healthcheck::check(cli.config.host, cli.config.port).await
            }
            Some(Command::Stop) => stop(&cli.config).await,
            None => run(cli.config).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let addr = config.listen_addr();
    for warning in config.validate()? {
        eprintln!("\n{warning}\n");
    }
    let gateway = Gateway::new(config)?;
    if let Some(egress) = gateway.egress_addr() {
        println!("dispatch-gateway egress proxy on {egress}");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("ERROR: cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    println!("dispatch-gateway listening on http://{local}");
    let _ = std::io::stdout().flush();
    let shutdown = gateway.shutdown_token();
    tokio::spawn(async move {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    gateway.serve(listener).await
}

/// `dispatch-gateway stop`.
async fn stop(config: &Config) -> anyhow::Result<()> {
    let report = dispatch_gateway::local_broker::stop(&config.required_state_dir()?).await?;
    let _ = writeln!(std::io::stdout(), "{report}");
    Ok(())
}

/// The secrets among the flags, by argument id, with their variables.
const SECRET_ARGS: &[(&str, &str)] = &[
    ("terminal_key", "TERMINAL_KEY"),
    ("broker_token", "BROKER_TOKEN"),
];

/// The variable of a secret given as a flag rather than through the
/// environment (a process's environment is private to it, see
/// docs/security.md; its command line is not).
fn secret_on_command_line(matches: &ArgMatches) -> Option<&'static str> {
    SECRET_ARGS
        .iter()
        .find(|(id, _)| matches.value_source(id) == Some(ValueSource::CommandLine))
        .map(|(_, variable)| *variable)
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
