//! `dispatch-broker admin <list|end|kill|notice|drain|status>`: calls the
//! Admin service of a running broker and prints the answer for people or,
//! with `--json`, for scripts. The admin secret is read from
//! BROKER_ADMIN_TOKEN only, so it never shows in `ps`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::admin_client::AdminClient;
use serde_json::{Value, json};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::client::{self, BearerToken};
use crate::config::ListenAddr;

/// Time allowed for one admin call (an end waits for its grace period).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// `dispatch-broker admin`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct AdminArgs {
    /// Broker to call: `host:port` or `unix:/path`; defaults to BROKER_LISTEN
    /// (an unspecified address such as 0.0.0.0 means this machine).
    #[arg(long)]
    pub broker: Option<ListenAddr>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: AdminAction,
}

/// The admin calls.
#[derive(Subcommand, Debug, Clone)]
pub enum AdminAction {
    /// Sessions with live figures: viewers, bytes, idle time, pid, CPU, memory.
    List {
        /// Also list ended sessions still within retention.
        #[arg(long)]
        all: bool,
    },
    /// Ends a session: SIGHUP to its processes, SIGKILL after the grace period.
    End {
        /// Session id.
        id: String,
        /// Milliseconds between SIGHUP and SIGKILL.
        #[arg(long, default_value_t = 5000)]
        grace_ms: u32,
    },
    /// Kills a session at once (SIGKILL to all its processes).
    Kill {
        /// Session id.
        id: String,
    },
    /// Shows a line to the viewers of a session: `notice <ID> <TEXT...>`,
    /// or of every running session: `notice --all <TEXT...>`.
    Notice {
        /// Send to every running session.
        #[arg(long)]
        all: bool,
        /// The session id (unless --all), then the text.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// Stops the creation of new sessions and lists those still running.
    Drain {
        /// Accept new sessions again.
        #[arg(long)]
        resume: bool,
    },
    /// Version, uptime, session counts and conversation index figures.
    Status,
}

type Client = AdminClient<InterceptedService<Channel, BearerToken>>;

/// Runs one admin command against the broker at `args.broker` (or
/// `default_addr`), authenticating with `token`.
pub async fn run(args: AdminArgs, default_addr: &ListenAddr, token: &str) -> ExitCode {
    match call(&args, default_addr, token).await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dispatch-broker admin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn call(args: &AdminArgs, default_addr: &ListenAddr, token: &str) -> Result<String, String> {
    if token.is_empty() {
        return Err(
            "BROKER_ADMIN_TOKEN is not set (the admin secret is read from the environment only)"
                .into(),
        );
    }
    let addr = dialable(args.broker.as_ref().unwrap_or(default_addr));
    let channel = client::connect(&addr)
        .await
        .map_err(|e| format!("cannot connect to the broker at {addr}: {e}"))?;
    let token = BearerToken::new(token)
        .map_err(|_| "BROKER_ADMIN_TOKEN must be printable ASCII".to_owned())?;
    let mut client = AdminClient::with_interceptor(channel, token);
    let output = tokio::time::timeout(CALL_TIMEOUT, execute(&mut client, &args.action, args.json))
        .await
        .map_err(|_| "the broker did not answer in time".to_owned())?;
    output.map_err(|status| {
        let message = status.message();
        match status.code() {
            tonic::Code::Unimplemented => format!(
                "the broker does not serve the Admin service (is BROKER_ADMIN_TOKEN set for the broker?): {message}"
            ),
            code => format!("{code:?}: {message}"),
        }
    })
}

/// Turns an unspecified listening address into one a client can dial.
fn dialable(addr: &ListenAddr) -> ListenAddr {
    match addr {
        ListenAddr::Tcp(socket) if socket.ip().is_unspecified() => {
            let ip = match socket.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            ListenAddr::Tcp(SocketAddr::new(ip, socket.port()))
        }
        other => other.clone(),
    }
}

async fn execute(
    client: &mut Client,
    action: &AdminAction,
    as_json: bool,
) -> Result<String, tonic::Status> {
    let render = |value: Value, text: String| {
        if as_json {
            serde_json::to_string_pretty(&value).unwrap_or_default()
        } else {
            text
        }
    };
    Ok(match action {
        AdminAction::List { all } => {
            let sessions = client
                .list_session_figures(pb::ListSessionFiguresRequest {
                    include_ended: *all,
                })
                .await?
                .into_inner()
                .sessions;
            render(
                json!({ "sessions": sessions.iter().map(figures_json).collect::<Vec<_>>() }),
                figures_table(&sessions),
            )
        }
        AdminAction::End { id, grace_ms } => {
            let figures = client
                .end_session_gracefully(pb::AdminSessionRequest {
                    session_id: id.clone(),
                    grace_ms: *grace_ms,
                })
                .await?
                .into_inner();
            render(figures_json(&figures), ended_line("ended", &figures))
        }
        AdminAction::Kill { id } => {
            let figures = client
                .kill_session(pb::AdminSessionRequest {
                    session_id: id.clone(),
                    grace_ms: 0,
                })
                .await?
                .into_inner();
            render(figures_json(&figures), ended_line("killed", &figures))
        }
        AdminAction::Notice { all, words } => {
            let (session_id, text) = match (all, words.split_first()) {
                (true, _) => (String::new(), words.join(" ")),
                (false, Some((id, rest))) if !rest.is_empty() => (id.clone(), rest.join(" ")),
                _ => {
                    return Err(tonic::Status::invalid_argument(
                        "usage: notice <ID> <TEXT...> or notice --all <TEXT...>",
                    ));
                }
            };
            let reply = client
                .send_notice(pb::SendNoticeRequest { session_id, text })
                .await?
                .into_inner();
            render(
                json!({ "sessions": reply.sessions, "viewers": reply.viewers }),
                format!(
                    "notice sent to {} viewer(s) of {} session(s)",
                    reply.viewers, reply.sessions
                ),
            )
        }
        AdminAction::Drain { resume } => {
            let reply = client
                .drain(pb::DrainRequest { resume: *resume })
                .await?
                .into_inner();
            let headline = if reply.draining {
                format!(
                    "draining: new sessions are refused; {} still running",
                    reply.running.len()
                )
            } else {
                format!("accepting new sessions; {} running", reply.running.len())
            };
            render(
                json!({
                    "draining": reply.draining,
                    "running": reply.running.iter().map(figures_json).collect::<Vec<_>>(),
                }),
                if reply.running.is_empty() {
                    headline
                } else {
                    format!("{headline}\n{}", figures_table(&reply.running))
                },
            )
        }
        AdminAction::Status => {
            let status = client
                .get_status(pb::GetStatusRequest {})
                .await?
                .into_inner();
            render(status_json(&status), status_text(&status))
        }
    })
}

fn status_name(session: &pb::Session) -> &'static str {
    match pb::SessionStatus::try_from(session.status) {
        Ok(pb::SessionStatus::Running) => "running",
        Ok(pb::SessionStatus::Exited) => "ended",
        _ => "unknown",
    }
}

fn mode_name(mode: i32) -> &'static str {
    match pb::SessionMode::try_from(mode) {
        Ok(pb::SessionMode::Shell) => "shell",
        Ok(pb::SessionMode::Claude) => "claude",
        _ => "unspecified",
    }
}

fn exit_text(exit: Option<&pb::ExitStatus>) -> String {
    match exit {
        Some(pb::ExitStatus {
            code: Some(code), ..
        }) => format!("exit {code}"),
        Some(pb::ExitStatus { signal, .. }) if !signal.is_empty() => signal.clone(),
        _ => String::new(),
    }
}

/// One session's figures as JSON.
pub fn figures_json(figures: &pb::SessionFigures) -> Value {
    let session = figures.session.clone().unwrap_or_default();
    json!({
        "id": session.id,
        "name": session.name,
        "mode": mode_name(session.mode),
        "status": status_name(&session),
        "pid": session.pid,
        "viewers": session.viewers,
        "cols": session.cols,
        "rows": session.rows,
        "cwd": session.cwd,
        "created_at_ms": session.created_at_ms,
        "ended_at_ms": session.ended_at_ms,
        "exit": session.exit.as_ref().map(|e| json!({ "code": e.code, "signal": e.signal })),
        "bytes_in": figures.bytes_in,
        "bytes_out": figures.bytes_out,
        "idle_ms": figures.idle_ms,
        "process": figures.process.as_ref().map(|p| json!({
            "processes": p.processes,
            "cpu_seconds": p.cpu_seconds,
            "cpu_percent": p.cpu_percent,
            "rss_bytes": p.rss_bytes,
        })),
    })
}

fn figures_table(sessions: &[pb::SessionFigures]) -> String {
    if sessions.is_empty() {
        return "no sessions".into();
    }
    let mut out = format!(
        "{:<36}  {:<16}  {:<7}  {:>7}  {:>7}  {:>9}  {:>9}  {:>7}  {:>6}  {:>9}  {:>5}",
        "ID", "NAME", "STATUS", "PID", "VIEWERS", "IN", "OUT", "IDLE", "CPU%", "RSS", "PROCS"
    );
    for figures in sessions {
        let session = figures.session.clone().unwrap_or_default();
        let name: String = session.name.chars().take(16).collect();
        let (cpu, rss, procs) = match &figures.process {
            Some(p) => (
                format!("{:.1}", p.cpu_percent),
                human_bytes(p.rss_bytes),
                p.processes.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let status = match status_name(&session) {
            "ended" => exit_text(session.exit.as_ref()),
            other => other.to_owned(),
        };
        out.push_str(&format!(
            "\n{:<36}  {:<16}  {:<7}  {:>7}  {:>7}  {:>9}  {:>9}  {:>7}  {:>6}  {:>9}  {:>5}",
            session.id,
            name,
            status,
            if session.pid == 0 {
                "-".to_owned()
            } else {
                session.pid.to_string()
            },
            session.viewers,
            human_bytes(figures.bytes_in),
            human_bytes(figures.bytes_out),
            human_duration(Duration::from_millis(figures.idle_ms)),
            cpu,
            rss,
            procs,
        ));
    }
    out
}

fn ended_line(verb: &str, figures: &pb::SessionFigures) -> String {
    let session = figures.session.clone().unwrap_or_default();
    match status_name(&session) {
        "ended" => format!(
            "{verb} {} ({})",
            session.id,
            exit_text(session.exit.as_ref())
        ),
        _ => format!("{} is still running (it did not end in time)", session.id),
    }
}

fn status_json(status: &pb::BrokerStatus) -> Value {
    json!({
        "version": status.version,
        "uptime_ms": status.uptime_ms,
        "started_at_ms": status.started_at_ms,
        "draining": status.draining,
        "sessions_running": status.sessions_running,
        "sessions_ended": status.sessions_ended,
        "sessions_created_total": status.sessions_created_total,
        "viewers": status.viewers,
        "max_sessions": status.max_sessions,
        "conversations": status.conversations.as_ref().map(|c| json!({
            "conversations": c.conversations,
            "transcripts": c.transcripts,
            "bytes": c.bytes,
            "corrupt_lines": c.corrupt_lines,
            "unreadable": c.unreadable,
            "last_scan_ms": c.last_scan_ms,
            "scans": c.scans,
        })),
    })
}

fn status_text(status: &pb::BrokerStatus) -> String {
    let mut out = format!(
        "dispatch-broker {}\nuptime       {}\nnew sessions {}\nsessions     {} running / {} max, {} ended (retained), {} created since start\nviewers      {}",
        status.version,
        human_duration(Duration::from_millis(status.uptime_ms)),
        if status.draining {
            "refused (draining)"
        } else {
            "accepted"
        },
        status.sessions_running,
        status.max_sessions,
        status.sessions_ended,
        status.sessions_created_total,
        status.viewers,
    );
    match &status.conversations {
        Some(c) => out.push_str(&format!(
            "\nconversations {} in {} transcripts ({}), {} corrupt lines, {} scans",
            c.conversations,
            c.transcripts,
            human_bytes(c.bytes),
            c.corrupt_lines,
            c.scans
        )),
        None => out.push_str("\nconversations (index not served)"),
    }
    out
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3725 s` -> `1h2m`.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_figures() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(Duration::from_secs(3725)), "1h2m");
        assert_eq!(human_duration(Duration::from_secs(59)), "59s");
    }

    #[test]
    fn unspecified_addresses_are_dialled_on_loopback() {
        let addr: ListenAddr = "0.0.0.0:50051".parse().unwrap();
        assert_eq!(dialable(&addr).to_string(), "127.0.0.1:50051");
    }
}
