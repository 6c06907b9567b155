//! The `dispatch-gateway` binary's body (`main.rs` only calls [`main`]): its
//! command line ([`Cli`]); makes the process non-dumpable, parses the
//! command line, sets up logging, refuses secrets given as flags, and runs
//! the gateway, its health check or `stop`. The configuration is checked
//! once, by [`Gateway::new`].

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use crate::Gateway;
use crate::config::Config;

/// The internet-facing half of dispatch: HTTP, WebSockets, authentication and
/// the web UI, in front of dispatch-broker.
#[derive(Parser, Debug)]
#[command(name = "dispatch-gateway", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// Log format on stderr: `text` (human-readable) or `json` (one object
    /// per line).
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands; without one the gateway serves.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Exit 0 when the gateway on the configured HOST and PORT answers /healthz.
    Healthcheck,
    /// Stop dispatch for good: the gateway running the local broker of
    /// STATE_DIR, that broker, and every session in it.
    Stop,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Runs the binary.
pub fn main() -> ExitCode {
    // First thing: no other process of this user (a program in a session)
    // may read this one's memory, environment or open files through /proc
    // or ptrace. See docs/security.md.
    let private = nix::sys::prctl::set_dumpable(false);
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(cli.log_format, "info");
    if let Some(refusal) = secret_on_command_line(&matches) {
        eprintln!("ERROR: {refusal}");
        return ExitCode::FAILURE;
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
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Healthcheck) => {
                crate::healthcheck::check(cli.config.host, cli.config.port).await
            }
            Some(Command::Stop) => stop(&cli.config).await,
            None => serve(cli.config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until SIGTERM or SIGINT.
async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.listen_addr();
    let gateway = Gateway::new(config)?;
    if let Some(egress) = gateway.egress_addr() {
        println!("dispatch-gateway egress proxy on {egress}");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("ERROR: cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    // Machine-readable line for supervisors (the real port when binding :0).
    println!("dispatch-gateway listening on http://{local}");
    let _ = std::io::stdout().flush();
    let shutdown = gateway.shutdown_token();
    tokio::spawn(async move {
        terminated().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    gateway.serve(listener).await
}

/// Resolves on SIGTERM or SIGINT (never, when the handlers cannot be set).
async fn terminated() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// `dispatch-gateway stop`.
async fn stop(config: &Config) -> anyhow::Result<()> {
    let report = crate::local_broker::stop(&config.required_state_dir()?).await?;
    let _ = writeln!(std::io::stdout(), "{report}");
    Ok(())
}

/// The secrets among the flags, by argument id, with their variables.
const SECRET_ARGS: &[(&str, &str)] = &[
    ("terminal_key", "TERMINAL_KEY"),
    ("broker_token", "BROKER_TOKEN"),
];

/// The refusal, naming the flag, when a secret was given as a flag rather
/// than through the environment (a process's environment is private to it,
/// see docs/security.md; its command line is not).
fn secret_on_command_line(matches: &ArgMatches) -> Option<String> {
    let (id, variable) = SECRET_ARGS
        .iter()
        .find(|(id, _)| matches.value_source(id) == Some(ValueSource::CommandLine))?;
    Some(format!(
        "{variable} was given as --{}, which every local user can read \
         (ps, /proc/<pid>/cmdline); set the {variable} environment variable instead",
        id.replace('_', "-")
    ))
}

/// Logs to stderr, as text or JSON lines, at `default_level` unless
/// `RUST_LOG` says otherwise.
fn init_tracing(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
