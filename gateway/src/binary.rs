//! The `dispatch-gateway` binary's body (`main.rs` only calls [`main`]):
//! makes the process non-dumpable, parses the command line ([`Cli`]), sets up
//! logging, refuses secrets given as flags, and runs the gateway, its health
//! check or `stop`. The configuration is checked once, by [`Gateway::new`].

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use tokio::signal::unix::{SignalKind, signal};

use crate::Gateway;
use crate::config::{Cli, Command, Config, LogFormat};

/// Runs the binary.
pub fn main() -> ExitCode {
    // First thing: no other process of this user (a program in a session)
    // may read this one's memory, environment or open files through /proc
    // or ptrace. See docs/security.md.
    let private = nix::sys::prctl::set_dumpable(false);
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(cli.log_format);
    if let Some(variable) = secret_on_command_line(&matches) {
        eprintln!(
            "ERROR: {variable} was given on the command line, which every local user can read \
             (ps, /proc/<pid>/cmdline); set the {variable} environment variable instead"
        );
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
    let report = crate::local_broker::stop(&config.required_state_dir()?).await?;
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

/// Logs to stderr, as text or JSON lines.
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
