//! The egress proxy: the one way out for sessions, on its own listener
//! (`EGRESS_LISTEN`). An HTTP `CONNECT` proxy that tunnels bytes untouched
//! (TLS stays end to end) to allowlisted hosts and ports only, for sessions
//! that present their own credentials (given to them by the broker as
//! `HTTPS_PROXY`), refusing targets inside the host's networks, within
//! per-session and total limits. Every connection is logged (target
//! `dispatch::egress`), counted in `/metrics`, and shown per session at
//! `GET /api/sessions/{id}/egress` (docs/protocol.md).
//!
//! This module owns the settings ([`EgressConfig`]), binding
//! ([`EgressProxy::bind`]) and serving ([`EgressProxy::serve`]), and the
//! ledger route ([`serve_ledger`]).

mod address;
mod allowlist;
mod audit;
mod credentials;
mod ledger;
mod limits;
mod proxy;
mod relay;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dispatch_proto::egress::EgressKey;
use dispatch_proto::v1::GetSessionRequest;
use warp::http::StatusCode;
use warp::reply::Response;

pub use audit::EgressMetrics;
pub use ledger::Ledger;

use crate::error::{ApiError, json_response};
use crate::protocol::egress::EgressReport;
use crate::router::ApiRequest;
use crate::state::AppState;

/// The hosts Claude Code documents that it needs, as its network
/// configuration page lists them under "Network access requirements":
/// `api.anthropic.com` (the API), `claude.ai` (login and the WebFetch
/// safeguard), `statsig.anthropic.com` (telemetry) and `sentry.io` (error
/// reports); plus `console.anthropic.com`, where its login for API accounts
/// goes. The last two of the documented ones can be turned off in the
/// session (`DISABLE_TELEMETRY=1`, `DISABLE_ERROR_REPORTING=1`).
pub const DEFAULT_ALLOW: &str =
    "api.anthropic.com,claude.ai,console.anthropic.com,statsig.anthropic.com,sentry.io";

/// The egress proxy's flags.
#[derive(clap::Args, Clone, Debug)]
pub struct EgressConfig {
    /// Address (`ip:port`) of the egress proxy sessions reach the outside
    /// through. Off when unset. Keep it on an internal network: the
    /// gateway passes it to its own broker child in local mode.
    #[arg(long, env = "EGRESS_LISTEN")]
    pub egress_listen: Option<SocketAddr>,

    /// Hosts the proxy may reach, comma-separated: exact names or
    /// addresses, and `*.suffix` for any name below a suffix. Only exact
    /// entries may resolve to loopback, private or link-local addresses.
    #[arg(long, env = "EGRESS_ALLOW", value_delimiter = ',', default_value = DEFAULT_ALLOW)]
    pub egress_allow: Vec<String>,

    /// Ports the proxy may reach, comma-separated.
    #[arg(
        long,
        env = "EGRESS_PORTS",
        value_delimiter = ',',
        default_value = "443"
    )]
    pub egress_ports: Vec<u16>,

    /// Tunnels one session may have open at once (more get 429).
    #[arg(long, env = "EGRESS_MAX_TUNNELS_PER_SESSION", default_value_t = 32)]
    pub egress_max_tunnels_per_session: usize,

    /// Connections the proxy holds at once, all sessions together (more get 503).
    #[arg(long, env = "EGRESS_MAX_TUNNELS", default_value_t = 512)]
    pub egress_max_tunnels: usize,

    /// Seconds without a byte either way after which a tunnel is closed.
    #[arg(long, env = "EGRESS_IDLE_SECS", default_value_t = 300)]
    pub egress_idle_secs: u64,

    /// Seconds allowed for a client to send its request, and for the
    /// connection upstream (then 504).
    #[arg(long, env = "EGRESS_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub egress_connect_timeout_secs: u64,
}

/// The checked settings.
#[derive(Debug)]
struct Settings {
    allow: allowlist::Allowlist,
    ports: Vec<u16>,
    limits: limits::Limits,
    max_tunnels: usize,
    max_tunnels_per_session: usize,
    idle: Duration,
    connect_timeout: Duration,
}

impl Settings {
    fn new(config: &EgressConfig) -> anyhow::Result<Self> {
        let allow = allowlist::Allowlist::parse(&config.egress_allow)
            .map_err(|e| anyhow::anyhow!("ERROR: {e}"))?;
        let positive = |name: &str, value: u64| match value {
            0 => Err(anyhow::anyhow!("ERROR: {name} must be at least 1")),
            _ => Ok(()),
        };
        positive("EGRESS_MAX_TUNNELS", config.egress_max_tunnels as u64)?;
        positive(
            "EGRESS_MAX_TUNNELS_PER_SESSION",
            config.egress_max_tunnels_per_session as u64,
        )?;
        positive("EGRESS_IDLE_SECS", config.egress_idle_secs)?;
        positive(
            "EGRESS_CONNECT_TIMEOUT_SECS",
            config.egress_connect_timeout_secs,
        )?;
        if config.egress_ports.contains(&0) {
            anyhow::bail!("ERROR: EGRESS_PORTS cannot hold port 0");
        }
        Ok(Self {
            allow,
            ports: config.egress_ports.clone(),
            limits: limits::Limits::new(
                config.egress_max_tunnels,
                config.egress_max_tunnels_per_session,
            ),
            max_tunnels: config.egress_max_tunnels,
            max_tunnels_per_session: config.egress_max_tunnels_per_session,
            idle: Duration::from_secs(config.egress_idle_secs),
            connect_timeout: Duration::from_secs(config.egress_connect_timeout_secs),
        })
    }
}

/// A bound egress proxy, not yet serving.
#[derive(Debug)]
pub struct EgressProxy {
    listener: tokio::net::TcpListener,
    settings: Settings,
    /// Set by [`EgressProxy::use_broker_token`].
    key: Option<EgressKey>,
}

impl EgressProxy {
    /// Checks the settings and binds `EGRESS_LISTEN` (`None` when unset).
    /// Must run inside a tokio runtime.
    pub fn bind(config: &EgressConfig) -> anyhow::Result<Option<Self>> {
        let Some(addr) = config.egress_listen else {
            return Ok(None);
        };
        let settings = Settings::new(config)?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("ERROR: cannot listen on EGRESS_LISTEN {addr}: {e}"))?;
        listener.set_nonblocking(true)?;
        Ok(Some(Self {
            listener: tokio::net::TcpListener::from_std(listener)?,
            settings,
            key: None,
        }))
    }

    /// Sessions' credentials derive from the broker token: without one,
    /// none can be checked, so the proxy refuses to start.
    pub fn use_broker_token(&mut self, broker_token: Option<&str>) -> anyhow::Result<()> {
        let token = broker_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow::anyhow!(
                "ERROR: EGRESS_LISTEN needs BROKER_TOKEN: sessions' proxy credentials are derived from it"
            )
        })?;
        self.key = Some(EgressKey::derive(token));
        Ok(())
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The URL a broker on this host gives its sessions
    /// (`EGRESS_PROXY_URL`): the bound address, loopback when bound to all.
    pub fn local_url(&self) -> std::io::Result<String> {
        let mut addr = self.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Ok(format!("http://{addr}"))
    }

    /// Serves until the gateway shuts down (never without a broker token).
    pub async fn serve(self, state: Arc<AppState>) {
        let addr = self
            .local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        let Some(key) = self.key else {
            tracing::error!(target: "dispatch::egress", "no broker token: the egress proxy is off");
            return;
        };
        tracing::info!(target: "dispatch::egress", addr = %addr, "egress proxy serving");
        let shared = Arc::new(proxy::Shared {
            settings: self.settings,
            key,
            state,
        });
        proxy::serve(self.listener, shared).await;
    }
}

/// `GET /api/sessions/{id}/egress`: the hosts a session reached and was
/// refused; 404 when the broker does not know the session. `id` is a
/// checked UUID.
pub async fn serve_ledger(
    state: &AppState,
    request: &ApiRequest,
    id: String,
) -> Result<Response, ApiError> {
    let call = state
        .broker
        .request(GetSessionRequest { id: id.clone() }, &request.id);
    if let Err(status) = state.broker.sessions().get_session(call).await {
        if status.code() == tonic::Code::NotFound {
            state.egress.forget(&id);
        }
        return Err(ApiError::from_status(&status));
    }
    let hosts = state.egress.view(&id);
    Ok(json_response(
        StatusCode::OK,
        &EgressReport {
            enabled: state.config.egress.egress_listen.is_some(),
            session_id: id,
            hosts,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        egress: EgressConfig,
    }

    fn settings(args: &[&str]) -> anyhow::Result<Settings> {
        let mut all = vec!["dispatch-gateway"];
        all.extend_from_slice(args);
        Settings::new(&Cli::try_parse_from(all)?.egress)
    }

    #[test]
    fn defaults_allow_what_claude_code_needs_on_443() {
        let settings = settings(&[]).unwrap();
        for host in [
            "api.anthropic.com",
            "claude.ai",
            "console.anthropic.com",
            "statsig.anthropic.com",
            "sentry.io",
        ] {
            let target = allowlist::Target::parse(&format!("{host}:443")).unwrap();
            assert_eq!(
                settings.allow.matches(&target),
                Some(allowlist::Match::Exact)
            );
        }
        let other = allowlist::Target::parse("registry.npmjs.org:443").unwrap();
        assert!(settings.allow.matches(&other).is_none());
        assert_eq!(settings.ports, [443]);
        assert_eq!(
            (settings.max_tunnels, settings.max_tunnels_per_session),
            (512, 32)
        );
        assert_eq!(settings.idle, Duration::from_secs(300));
        assert_eq!(settings.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_settings_are_refused() {
        for args in [
            &["--egress-allow", "*"][..],
            &["--egress-ports", "0"],
            &["--egress-max-tunnels", "0"],
            &["--egress-max-tunnels-per-session", "0"],
            &["--egress-idle-secs", "0"],
            &["--egress-connect-timeout-secs", "0"],
        ] {
            assert!(settings(args).is_err(), "{args:?}");
        }
        let list = settings(&[
            "--egress-allow",
            "github.com,*.npmjs.org",
            "--egress-ports",
            "443,80",
        ]);
        assert_eq!(list.unwrap().ports, [443, 80]);
    }
}
