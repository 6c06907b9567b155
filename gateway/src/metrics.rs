//! The gateway's Prometheus metrics at `GET /metrics` (behind the same
//! authentication as `/api`: a session cookie or `Authorization: Bearer
//! <TERMINAL_KEY>`): HTTP responses and latency, WebSocket connections,
//! terminal bytes relayed, logins, and whether the broker answers. The
//! exposition is written by `prometheus-client` in the OpenMetrics text
//! format, which Prometheus scrapes natively.

use std::sync::LazyLock;
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

use crate::state::AppState;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Failed logins (wrong key), rate-limited ones included.
pub static LOGIN_FAILURES: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Successful logins.
pub static LOGINS: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Terminal bytes sent to browsers (binary frames).
pub static BYTES_TO_CLIENTS: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Terminal bytes received from browsers (keystrokes, pastes).
pub static BYTES_FROM_CLIENTS: LazyLock<Counter> = LazyLock::new(Counter::default);

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

/// HTTP connections open (not counting upgraded WebSockets).
pub static HTTP_CONNECTIONS_OPEN: LazyLock<Gauge> = LazyLock::new(Gauge::default);
static CONNECTIONS_REFUSED: LazyLock<Family<ReasonLabel, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    for reason in CONNECTION_REFUSALS {
        drop(family.get_or_create(&ReasonLabel { reason }));
    }
    family
});
static CONNECTIONS_CLOSED: LazyLock<Family<ReasonLabel, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    for reason in CONNECTION_CLOSES {
        drop(family.get_or_create(&ReasonLabel { reason }));
    }
    family
});

/// Counts one connection refused at accept, for one of [`CONNECTION_REFUSALS`].
pub fn connection_refused(reason: &'static str) {
    CONNECTIONS_REFUSED
        .get_or_create(&ReasonLabel { reason })
        .inc();
}

/// Counts one connection closed by the gateway, for one of [`CONNECTION_CLOSES`].
pub fn connection_closed(reason: &'static str) {
    CONNECTIONS_CLOSED
        .get_or_create(&ReasonLabel { reason })
        .inc();
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

/// The gateway's metrics that live as long as the process.
struct Metrics {
    sockets_open: Family<KindLabel, Gauge>,
    sockets_opened: Family<KindLabel, Counter>,
    /// Responses by status class (WebSocket upgrades count until the
    /// upgrade answer).
    responses: Family<CodeLabel, Counter>,
    http_latency: Histogram,
    /// Latency of the broker health checks made by `/readyz` and scrapes.
    broker_check_latency: Histogram,
    broker_unreachable: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        sockets_open: Family::default(),
        sockets_opened: Family::default(),
        responses: Family::default(),
        http_latency: latency_histogram(),
        broker_check_latency: latency_histogram(),
        broker_unreachable: Counter::default(),
    };
    // Every series exists from the start, so rates see their first change.
    for kind in SocketKind::ALL {
        drop(metrics.sockets_open.get_or_create(&kind.label()));
        drop(metrics.sockets_opened.get_or_create(&kind.label()));
    }
    for code in STATUS_CLASSES {
        drop(metrics.responses.get_or_create(&CodeLabel { code }));
    }
    metrics
});

/// Counts one open WebSocket for as long as it lives.
#[derive(Debug)]
pub struct OpenSocket(SocketKind);

impl OpenSocket {
    pub fn new(kind: SocketKind) -> Self {
        let label = kind.label();
        METRICS.sockets_open.get_or_create(&label).inc();
        METRICS.sockets_opened.get_or_create(&label).inc();
        Self(kind)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        METRICS.sockets_open.get_or_create(&self.0.label()).dec();
    }
}

/// Records one answered HTTP request.
pub fn observe_response(status: StatusCode, elapsed: Duration) {
    let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
    METRICS
        .responses
        .get_or_create(&CodeLabel {
            code: STATUS_CLASSES[class],
        })
        .inc();
    METRICS.http_latency.observe(elapsed.as_secs_f64());
}

/// Checks the broker, recording the latency and the outcome.
pub async fn check_broker(state: &AppState) -> Result<(), String> {
    let started = Instant::now();
    let result = state.broker.ready().await;
    METRICS
        .broker_check_latency
        .observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        METRICS.broker_unreachable.inc();
    }
    result
}

/// `GET /metrics` (the caller is already authenticated).
pub async fn serve(state: &AppState) -> Response {
    let broker_up = check_broker(state).await.is_ok();
    let mut response = Response::new(render(broker_up).into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every gateway metric; `broker_up` is this scrape's health check.
fn registry(broker_up: bool) -> Registry {
    let mut registry = Registry::default();
    let metrics = &*METRICS;
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
        LOGIN_FAILURES.clone(),
    );
    registry.register(
        "dispatch_gateway_logins",
        "Successful logins",
        LOGINS.clone(),
    );
    registry.register(
        "dispatch_gateway_terminal_bytes_sent",
        "Terminal bytes sent to browsers",
        BYTES_TO_CLIENTS.clone(),
    );
    registry.register(
        "dispatch_gateway_terminal_bytes_received",
        "Terminal bytes received from browsers",
        BYTES_FROM_CLIENTS.clone(),
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
        HTTP_CONNECTIONS_OPEN.clone(),
    );
    registry.register(
        "dispatch_gateway_connections_refused",
        "HTTP connections refused at accept with 503, by reason",
        CONNECTIONS_REFUSED.clone(),
    );
    registry.register(
        "dispatch_gateway_connections_closed",
        "HTTP connections closed by the gateway, by reason",
        CONNECTIONS_CLOSED.clone(),
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
    crate::egress::register_metrics(&mut registry);
    registry
}

/// Every gateway metric as OpenMetrics text.
pub fn render(broker_up: bool) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry(broker_up))
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(kind: SocketKind) -> i64 {
        METRICS.sockets_open.get_or_create(&kind.label()).get()
    }

    #[test]
    fn open_sockets_are_counted_while_alive() {
        let before = open(SocketKind::Events);
        let socket = OpenSocket::new(SocketKind::Events);
        assert_eq!(open(SocketKind::Events), before + 1);
        drop(socket);
        assert_eq!(open(SocketKind::Events), before);
    }

    #[test]
    fn every_series_is_there_from_the_start() {
        let text = render(false);
        assert!(text.contains("dispatch_gateway_websockets_open{kind=\"events\"} "));
        assert!(text.contains("dispatch_gateway_http_responses_total{code=\"5xx\"} "));
        assert!(text.contains("dispatch_gateway_broker_up 0\n"));
        assert!(text.ends_with("# EOF\n"));
    }
}
