//! The `dispatch-broker` binary's body (`main.rs` only calls [`main`]): its
//! command line ([`Cli`]); makes the process non-dumpable, parses the command
//! line, sets up logging, refuses the token given as a flag, and
//! runs the broker, its health check or an admin call. The configuration is
//! checked once, by [`Broker::new`].

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ListenAddr};
use crate::{Broker, Listener, admin, client};

/// The broker's command line.
#[derive(Parser, Debug)]
#[command(
    name = "dispatch-broker",
    version,
    about = "Owns dispatch's PTYs and serves them over gRPC"
)]
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

/// Subcommands; without one the broker serves.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Exits 0 when the broker at BROKER_LISTEN answers SERVING to a
    /// `grpc.health.v1` check (for container health checks).
    Healthcheck,
    /// Operator calls on a running broker (`dispatch.v1.Admin`); the secret
    /// comes from BROKER_ADMIN_TOKEN, never from the command line.
    Admin(admin::cli::AdminArgs),
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
    // The admin client only logs warnings (its output is the answer).
    let admin = matches!(cli.command, Some(Command::Admin(_)));
    init_tracing(cli.log_format, if admin { "warn" } else { "info" });
    if let Some(refusal) = secret_on_command_line(&matches) {
        eprintln!("dispatch-broker: {refusal}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = private {
        tracing::warn!(
            "cannot make the process non-dumpable: {e}; /proc/<pid>/environ stays readable by this user"
        );
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dispatch-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Healthcheck) => healthcheck(&cli.config.listen).await,
            Some(Command::Admin(args)) => {
                Ok(admin::cli::run(args, &cli.config.listen, &cli.config.admin_token.0).await)
            }
            None => serve(cli.config).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The secrets among the flags, by argument id, with their variables (the
/// admin secret has no flag at all).
const SECRET_ARGS: &[(&str, &str)] = &[("token", "BROKER_TOKEN")];

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

/// `dispatch-broker healthcheck`.
async fn healthcheck(addr: &ListenAddr) -> anyhow::Result<ExitCode> {
    Ok(if client::healthcheck(addr).await? {
        ExitCode::SUCCESS
    } else {
        eprintln!("dispatch-broker at {addr} is not serving");
        ExitCode::FAILURE
    })
}

/// Serves until SIGTERM or SIGINT.
async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let listener = Listener::bind(&config.listen).await?;
    let broker = Broker::new(config)?;
    if broker.config().token.0.is_empty() {
        tracing::warn!(
            "BROKER_TOKEN is empty: calls are not authenticated (Unix socket of mode 0600 only)"
        );
    }
    // Machine-readable line for supervisors (the real port when binding :0).
    println!("dispatch-broker listening on {}", listener.local_addr()?);
    if let Some(addr) = broker.config().metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
        println!(
            "dispatch-broker metrics on http://{}/metrics",
            metrics.local_addr()?
        );
        broker.serve_metrics(metrics);
    }
    if broker.config().admin_token.0.is_empty() {
        tracing::info!("BROKER_ADMIN_TOKEN is not set: the Admin service is off");
    }
    let shutdown = broker.shutdown_handle();
    tokio::spawn(async move {
        terminated().await;
        shutdown.shutdown();
    });
    broker.serve(listener).await?;
    Ok(ExitCode::SUCCESS)
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
