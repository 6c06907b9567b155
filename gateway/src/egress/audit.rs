//! What the egress proxy decided and why: the refusals with their HTTP
//! status and one-line reason, one structured log line per connection
//! (target `dispatch::egress`) and the Prometheus counters
//! ([`EgressMetrics`], part of the gateway's [`crate::metrics::Metrics`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Method,
    BadRequest,
    CredentialsRequired,
    BadCredentials,
    SessionNotRunning,
    BrokerUnreachable,
    PortNotAllowed,
    NotAllowlisted,
    NonPublicAddress,
    SessionLimit,
    TotalLimit,
    Unresolvable,
    ConnectTimeout,
    UpstreamRefused,
}

impl Refusal {
    const ALL: [Self; 14] = [
        Self::Method,
        Self::BadRequest,
        Self::CredentialsRequired,
        Self::BadCredentials,
        Self::SessionNotRunning,
        Self::BrokerUnreachable,
        Self::PortNotAllowed,
        Self::NotAllowlisted,
        Self::NonPublicAddress,
        Self::SessionLimit,
        Self::TotalLimit,
        Self::Unresolvable,
        Self::ConnectTimeout,
        Self::UpstreamRefused,
    ];

    /// The status line's code and phrase.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Self::Method => (405, "Method Not Allowed"),
            Self::BadRequest => (400, "Bad Request"),
            Self::CredentialsRequired | Self::BadCredentials => {
                (407, "Proxy Authentication Required")
            }
            Self::SessionNotRunning
            | Self::PortNotAllowed
            | Self::NotAllowlisted
            | Self::NonPublicAddress => (403, "Forbidden"),
            Self::SessionLimit => (429, "Too Many Requests"),
            Self::TotalLimit | Self::BrokerUnreachable => (503, "Service Unavailable"),
            Self::Unresolvable | Self::UpstreamRefused => (502, "Bad Gateway"),
            Self::ConnectTimeout => (504, "Gateway Timeout"),
        }
    }

    /// The reason, as logged, shown in a session's egress view and answered.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Method => "only CONNECT is served",
            Self::BadRequest => "bad request",
            Self::CredentialsRequired => "proxy credentials required",
            Self::BadCredentials => "bad proxy credentials",
            Self::SessionNotRunning => "session not running",
            Self::BrokerUnreachable => "broker unreachable",
            Self::PortNotAllowed => "port not allowed",
            Self::NotAllowlisted => "not in allowlist",
            Self::NonPublicAddress => "non-public address",
            Self::SessionLimit => "too many tunnels for this session",
            Self::TotalLimit => "too many tunnels",
            Self::Unresolvable => "cannot resolve host",
            Self::ConnectTimeout => "connect timed out",
            Self::UpstreamRefused => "upstream unreachable",
        }
    }

    /// The metrics label.
    fn label(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::BadRequest => "bad_request",
            Self::CredentialsRequired => "credentials_required",
            Self::BadCredentials => "bad_credentials",
            Self::SessionNotRunning => "session_not_running",
            Self::BrokerUnreachable => "broker_unreachable",
            Self::PortNotAllowed => "port",
            Self::NotAllowlisted => "host",
            Self::NonPublicAddress => "address",
            Self::SessionLimit => "session_limit",
            Self::TotalLimit => "total_limit",
            Self::Unresolvable => "unresolvable",
            Self::ConnectTimeout => "connect_timeout",
            Self::UpstreamRefused => "upstream",
        }
    }
}

/// A refusal with the detail answered to the client (never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub why: Refusal,
    pub detail: Option<String>,
}

impl From<Refusal> for Refused {
    fn from(why: Refusal) -> Self {
        Self { why, detail: None }
    }
}

impl Refused {
    pub fn new(why: Refusal, detail: impl Into<String>) -> Self {
        Self {
            why,
            detail: Some(detail.into()),
        }
    }

    /// The one-line body.
    pub fn message(&self) -> String {
        match &self.detail {
            Some(detail) => format!("{}: {detail}", self.why.reason()),
            None => self.why.reason().to_owned(),
        }
    }
}

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Both sides closed (or one failed).
    Closed,
    /// No byte either way for `EGRESS_IDLE_SECS`.
    Idle,
    /// The gateway shut down.
    Shutdown,
}

impl End {
    fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Idle => "idle timeout",
            Self::Shutdown => "shutdown",
        }
    }
}

/// One connection to the proxy, for the log and the counters.
#[derive(Debug, Default)]
pub struct Record<'a> {
    pub session: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// `None` for a tunnel that was opened.
    pub refused: Option<&'a Refused>,
    pub end: Option<End>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

/// The egress proxy's counters, shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct EgressMetrics(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    tunnels: Family<DecisionLabel, Counter>,
    refusals: Family<ReasonLabel, Counter>,
    bytes: Family<DirectionLabel, Counter>,
    open: Gauge,
}

impl Counters {
    fn bytes(&self, direction: Direction) -> Counter {
        let direction = match direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        self.bytes
            .get_or_create(&DirectionLabel { direction })
            .clone()
    }
}

impl Default for Counters {
    fn default() -> Self {
        let metrics = Self {
            tunnels: Family::default(),
            refusals: Family::default(),
            bytes: Family::default(),
            open: Gauge::default(),
        };
        for decision in ["allowed", "refused"] {
            drop(metrics.tunnels.get_or_create(&DecisionLabel { decision }));
        }
        for why in Refusal::ALL {
            drop(metrics.refusals.get_or_create(&ReasonLabel {
                reason: why.label(),
            }));
        }
        for direction in ["up", "down"] {
            drop(metrics.bytes.get_or_create(&DirectionLabel { direction }));
        }
        metrics
    }
}

/// Counts one open tunnel for as long as it lives.
#[derive(Debug)]
pub struct OpenTunnel(EgressMetrics);

impl OpenTunnel {
    pub fn new(metrics: &EgressMetrics) -> Self {
        metrics.0.open.inc();
        Self(metrics.clone())
    }
}

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        self.0.0.open.dec();
    }
}

impl EgressMetrics {
    /// Logs `record` as one line and counts it.
    pub fn record(&self, record: &Record<'_>) {
        let decision = match record.refused {
            None => "allowed",
            Some(_) => "refused",
        };
        let reason = record.refused.map_or("", |r| r.why.reason());
        let detail = record
            .refused
            .and_then(|r| r.detail.as_deref())
            .unwrap_or("");
        tracing::info!(
            target: "dispatch::egress",
            session = record.session,
            host = record.host,
            port = record.port,
            decision,
            reason,
            detail,
            end = record.end.map_or("", End::label),
            bytes_up = record.bytes_up,
            bytes_down = record.bytes_down,
            duration_ms = record.duration.as_millis() as u64,
            "egress"
        );
        let metrics = &*self.0;
        metrics
            .tunnels
            .get_or_create(&DecisionLabel { decision })
            .inc();
        if let Some(refused) = record.refused {
            metrics
                .refusals
                .get_or_create(&ReasonLabel {
                    reason: refused.why.label(),
                })
                .inc();
        }
        metrics.bytes(Direction::Up).inc_by(record.bytes_up);
        metrics.bytes(Direction::Down).inc_by(record.bytes_down);
    }

    /// Adds the egress metrics to the gateway's registry.
    pub fn register(&self, registry: &mut Registry) {
        let metrics = &*self.0;
        registry.register(
            "dispatch_egress_tunnels",
            "Egress proxy connections, by decision",
            metrics.tunnels.clone(),
        );
        registry.register(
            "dispatch_egress_refusals",
            "Egress proxy connections refused, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "dispatch_egress_bytes",
            "Bytes relayed by egress tunnels, by direction (up: from the session)",
            metrics.bytes.clone(),
        );
        registry.register(
            "dispatch_egress_tunnels_open",
            "Egress tunnels open",
            metrics.open.clone(),
        );
    }
}
