//! The gateway's Prometheus metrics at `GET /metrics` (behind the same
//! authentication as `/api`: a session cookie or `Authorization: Bearer
//! <TERMINAL_KEY>`): HTTP responses and latency, connections, WebSocket
//! connections, terminal bytes relayed, logins, whether the broker answers,
//! and the egress proxy's figures. [`Metrics`] is one handle, made with the
//! gateway's state and passed to what counts; the exposition is written by
//! `prometheus-client` in the OpenMetrics text format, which Prometheus
//! scrapes natively.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::broker::Broker;
use crate::egress::EgressMetrics;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why HTTP connections are refused at accept (answered 503).
pub const CONNECTION_REFUSALS: [&str; 2] = ["client_limit", "server_limit"];
/// Why the gateway closes HTTP connections itself.
pub const CONNECTION_CLOSES: [&str; 4] = [
    "header_timeout",
    "idle_timeout",
    "body_timeout",
    "keep_alive_limit",
];

/// The label of the connection counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Kinds of WebSocket the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    Terminal,
    Events,
}

impl SocketKind {
    const ALL: [Self; 2] = [Self::Terminal, Self::Events];

    fn label(self) -> KindLabel {
        KindLabel {
            kind: match self {
                Self::Terminal => "terminal",
                Self::Events => "events",
            },
        }
    }
}

/// The label of the WebSocket families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The label of the response counter: the status class, `2xx`..`5xx`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A family with a series for each of `labels` from the start, so rates see
/// their first change.
fn family_of<L, M>(labels: impl IntoIterator<Item = L>) -> Family<L, M>
where
    L: Clone + std::hash::Hash + Eq,
    M: Default,
{
    let family = Family::default();
    for label in labels {
        drop(family.get_or_create(&label));
    }
    family
}

/// The gateway's metrics, shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct Metrics(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    /// Failed logins (wrong key), rate-limited ones included.
    login_failures: Counter,
    /// Successful logins.
    logins: Counter,
    /// Terminal bytes sent to browsers (binary frames).
    bytes_to_clients: Counter,
    /// Terminal bytes received from browsers (keystrokes, pastes).
    bytes_from_clients: Counter,
    /// Idle viewers moved to a fresh broker stream, shedding a burst's buffers.
    stream_handovers: Counter,
    /// HTTP connections open (not counting upgraded WebSockets).
    http_connections_open: Gauge,
    connections_refused: Family<ReasonLabel, Counter>,
    connections_closed: Family<ReasonLabel, Counter>,
    sockets_open: Family<KindLabel, Gauge>,
    sockets_opened: Family<KindLabel, Counter>,
    /// Responses by status class (WebSocket upgrades count until the
    /// upgrade answer).
    responses: Family<CodeLabel, Counter>,
    http_latency: Histogram,
    /// Latency of the broker health checks made by scrapes.
    broker_check_latency: Histogram,
    broker_unreachable: Counter,
    /// The egress proxy's tunnels, refusals and bytes.
    egress: EgressMetrics,
}

impl Default for Counters {
    fn default() -> Self {
        let reasons = |reasons: &[&'static str]| {
            family_of(reasons.iter().map(|&reason| ReasonLabel { reason }))
        };
        let kinds = || SocketKind::ALL.map(SocketKind::label);
        Self {
            login_failures: Counter::default(),
            logins: Counter::default(),
            bytes_to_clients: Counter::default(),
            bytes_from_clients: Counter::default(),
            stream_handovers: Counter::default(),
            http_connections_open: Gauge::default(),
            connections_refused: reasons(&CONNECTION_REFUSALS),
            connections_closed: reasons(&CONNECTION_CLOSES),
            sockets_open: family_of(kinds()),
            sockets_opened: family_of(kinds()),
            responses: family_of(STATUS_CLASSES.map(|code| CodeLabel { code })),
            http_latency: latency_histogram(),
            broker_check_latency: latency_histogram(),
            broker_unreachable: Counter::default(),
            egress: EgressMetrics::default(),
        }
    }
}

impl Metrics {
    /// Counts one failed login (wrong key or rate-limited).
    pub fn login_failed(&self) {
        self.0.login_failures.inc();
    }

    /// Counts one successful login.
    pub fn logged_in(&self) {
        self.0.logins.inc();
    }

    /// Counts terminal bytes sent to a browser.
    pub fn terminal_bytes_sent(&self, bytes: usize) {
        self.0.bytes_to_clients.inc_by(bytes as u64);
    }

    /// Counts terminal bytes received from a browser.
    pub fn terminal_bytes_received(&self, bytes: usize) {
        self.0.bytes_from_clients.inc_by(bytes as u64);
    }

    /// Counts one viewer moved to a fresh broker stream.
    pub fn stream_handed_over(&self) {
        self.0.stream_handovers.inc();
    }

    /// Counts one connection refused at accept, for one of [`CONNECTION_REFUSALS`].
    pub fn connection_refused(&self, reason: &'static str) {
        self.0
            .connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts one connection closed by the gateway, for one of [`CONNECTION_CLOSES`].
    pub fn connection_closed(&self, reason: &'static str) {
        self.0
            .connections_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts one open HTTP connection for as long as the guard lives.
    pub fn open_connection(&self) -> OpenConnection {
        self.0.http_connections_open.inc();
        OpenConnection(self.clone())
    }

    /// Counts one open WebSocket of `kind` for as long as the guard lives.
    pub fn open_socket(&self, kind: SocketKind) -> OpenSocket {
        let label = kind.label();
        self.0.sockets_open.get_or_create(&label).inc();
        self.0.sockets_opened.get_or_create(&label).inc();
        OpenSocket(self.clone(), kind)
    }

    /// Records one answered HTTP request.
    pub fn observe_response(&self, status: StatusCode, elapsed: Duration) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.0
            .responses
            .get_or_create(&CodeLabel {
                code: STATUS_CLASSES[class],
            })
            .inc();
        self.0.http_latency.observe(elapsed.as_secs_f64());
    }

    /// The egress proxy's counters.
    pub fn egress(&self) -> &EgressMetrics {
        &self.0.egress
    }

    /// Checks `broker`, recording the latency and the outcome.
    pub async fn check_broker(&self, broker: &Broker) -> Result<(), String> {
        let started = Instant::now();
        let result = broker.ready().await;
        self.0
            .broker_check_latency
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.0.broker_unreachable.inc();
        }
        result
    }

    /// `GET /metrics` (the caller is already authenticated), with a fresh
    /// check of `broker`.
    pub async fn serve(&self, broker: &Broker) -> Response {
        let broker_up = self.check_broker(broker).await.is_ok();
        let mut response = Response::new(self.render(broker_up).into());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// Every gateway metric; `broker_up` is this scrape's health check.
    fn registry(&self, broker_up: bool) -> Registry {
        let mut registry = Registry::default();
        let metrics = &*self.0;
        registry.register(
            "dispatch_gateway_build",
            "Version of the running gateway",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "dispatch_gateway_broker_up",
            "1 when the broker answered its health check at this scrape",
            ConstGauge::new(i64::from(broker_up)),
        );
        registry.register(
            "dispatch_gateway_broker_unreachable",
            "Broker health checks that failed",
            metrics.broker_unreachable.clone(),
        );
        registry.register(
            "dispatch_gateway_login_failures",
            "Failed logins (wrong key or rate-limited)",
            metrics.login_failures.clone(),
        );
        registry.register(
            "dispatch_gateway_logins",
            "Successful logins",
            metrics.logins.clone(),
        );
        registry.register(
            "dispatch_gateway_terminal_bytes_sent",
            "Terminal bytes sent to browsers",
            metrics.bytes_to_clients.clone(),
        );
        registry.register(
            "dispatch_gateway_terminal_bytes_received",
            "Terminal bytes received from browsers",
            metrics.bytes_from_clients.clone(),
        );
        registry.register(
            "dispatch_gateway_broker_stream_handovers",
            "Idle viewers moved to a fresh broker stream after a burst",
            metrics.stream_handovers.clone(),
        );
        registry.register(
            "dispatch_gateway_websockets_open",
            "WebSocket connections open, by kind",
            metrics.sockets_open.clone(),
        );
        registry.register(
            "dispatch_gateway_websockets_opened",
            "WebSocket connections accepted, by kind",
            metrics.sockets_opened.clone(),
        );
        registry.register(
            "dispatch_gateway_http_connections_open",
            "HTTP connections open (upgraded WebSockets not counted)",
            metrics.http_connections_open.clone(),
        );
        registry.register(
            "dispatch_gateway_connections_refused",
            "HTTP connections refused at accept with 503, by reason",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "dispatch_gateway_connections_closed",
            "HTTP connections closed by the gateway, by reason",
            metrics.connections_closed.clone(),
        );
        registry.register(
            "dispatch_gateway_http_responses",
            "HTTP responses, by status class",
            metrics.responses.clone(),
        );
        registry.register_with_unit(
            "dispatch_gateway_http_request_duration",
            "Time to answer an HTTP request",
            Unit::Seconds,
            metrics.http_latency.clone(),
        );
        registry.register_with_unit(
            "dispatch_gateway_broker_check_duration",
            "Round trip of the broker's gRPC health check",
            Unit::Seconds,
            metrics.broker_check_latency.clone(),
        );
        metrics.egress.register(&mut registry);
        registry
    }

    /// Every gateway metric as OpenMetrics text.
    pub fn render(&self, broker_up: bool) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry(broker_up))
            .expect("writing to a String cannot fail");
        out
    }
}

/// An open HTTP connection, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection(Metrics);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.0.http_connections_open.dec();
    }
}

/// An open WebSocket, counted until dropped.
#[derive(Debug)]
pub struct OpenSocket(Metrics, SocketKind);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.0.sockets_open.get_or_create(&self.1.label()).dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(metrics: &Metrics, kind: SocketKind) -> i64 {
        metrics.0.sockets_open.get_or_create(&kind.label()).get()
    }

    #[test]
    fn open_sockets_are_counted_while_alive() {
        let metrics = Metrics::default();
        let socket = metrics.open_socket(SocketKind::Events);
        assert_eq!(open(&metrics, SocketKind::Events), 1);
        drop(socket);
        assert_eq!(open(&metrics, SocketKind::Events), 0);
    }

    #[test]
    fn every_series_is_there_from_the_start() {
        let text = Metrics::default().render(false);
        assert!(text.contains("dispatch_gateway_websockets_open{kind=\"events\"} 0\n"));
        assert!(text.contains("dispatch_gateway_http_responses_total{code=\"5xx\"} 0\n"));
        assert!(
            text.contains("dispatch_gateway_connections_closed_total{reason=\"idle_timeout\"} 0\n")
        );
        assert!(text.contains("dispatch_gateway_broker_up 0\n"));
        assert!(text.contains("dispatch_egress_tunnels_total{decision=\"refused\"} 0\n"));
        assert!(text.ends_with("# EOF\n"));
    }
}
