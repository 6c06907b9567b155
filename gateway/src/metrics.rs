//! The gateway's Prometheus metrics at `GET /metrics` (behind the same
//! authentication as `/api`: a session cookie or `Authorization: Bearer
//! <TERMINAL_KEY>`): HTTP responses and latency, WebSocket connections,
//! terminal bytes relayed, logins, and whether the broker answers.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::state::AppState;

/// A monotonically increasing count.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

/// Failed logins (wrong key), rate-limited ones included.
pub static LOGIN_FAILURES: Counter = Counter::new();
/// Successful logins.
pub static LOGINS: Counter = Counter::new();
/// Terminal bytes sent to browsers (binary frames).
pub static BYTES_TO_CLIENTS: Counter = Counter::new();
/// Terminal bytes received from browsers (keystrokes, pastes).
pub static BYTES_FROM_CLIENTS: Counter = Counter::new();

/// Kinds of WebSocket the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    Terminal,
    Events,
}

impl SocketKind {
    const ALL: [Self; 2] = [Self::Terminal, Self::Events];

    fn label(self) -> &'static str {
        match self {
            Self::Terminal => "terminal",
            Self::Events => "events",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

static SOCKETS_OPEN: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];
static SOCKETS_OPENED: [Counter; 2] = [Counter::new(), Counter::new()];

/// Counts one open WebSocket for as long as it lives.
#[derive(Debug)]
pub struct OpenSocket(SocketKind);

impl OpenSocket {
    pub fn new(kind: SocketKind) -> Self {
        SOCKETS_OPEN[kind.index()].fetch_add(1, Ordering::Relaxed);
        SOCKETS_OPENED[kind.index()].inc();
        Self(kind)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        SOCKETS_OPEN[self.0.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Copy)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    const fn new() -> Self {
        Self {
            buckets: [0; LATENCY_BUCKETS.len()],
            count: 0,
            sum: 0.0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Responses by status class (1xx..5xx) and their latency (WebSocket
/// upgrades count until the upgrade answer).
static RESPONSES: [Counter; 5] = [
    Counter::new(),
    Counter::new(),
    Counter::new(),
    Counter::new(),
    Counter::new(),
];
static HTTP_LATENCY: Mutex<Histogram> = Mutex::new(Histogram::new());
/// Latency of the broker health checks made by `/readyz` and scrapes.
static BROKER_CHECK_LATENCY: Mutex<Histogram> = Mutex::new(Histogram::new());
static BROKER_UNREACHABLE: Counter = Counter::new();

/// Records one answered HTTP request.
pub fn observe_response(status: StatusCode, elapsed: Duration) {
    let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
    RESPONSES[class].inc();
    HTTP_LATENCY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .observe(elapsed.as_secs_f64());
}

/// Checks the broker, recording the latency and the outcome.
pub async fn check_broker(state: &AppState) -> Result<(), String> {
    let started = Instant::now();
    let result = state.broker.ready().await;
    BROKER_CHECK_LATENCY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        BROKER_UNREACHABLE.inc();
    }
    result
}

/// `GET /metrics` (the caller is already authenticated).
pub async fn serve(state: &AppState) -> Response {
    let broker_up = check_broker(state).await.is_ok();
    let mut response = Response::new(render(broker_up).into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every gateway metric as Prometheus text.
pub fn render(broker_up: bool) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "dispatch_gateway_build_info",
        "gauge",
        "Version of the running gateway.",
    );
    sample(
        &mut out,
        "dispatch_gateway_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    single(
        &mut out,
        "dispatch_gateway_broker_up",
        "gauge",
        "1 when the broker answered its health check at this scrape.",
        if broker_up { 1.0 } else { 0.0 },
    );
    single(
        &mut out,
        "dispatch_gateway_broker_unreachable_total",
        "counter",
        "Broker health checks that failed.",
        BROKER_UNREACHABLE.get() as f64,
    );
    single(
        &mut out,
        "dispatch_gateway_login_failures_total",
        "counter",
        "Failed logins (wrong key or rate-limited).",
        LOGIN_FAILURES.get() as f64,
    );
    single(
        &mut out,
        "dispatch_gateway_logins_total",
        "counter",
        "Successful logins.",
        LOGINS.get() as f64,
    );
    single(
        &mut out,
        "dispatch_gateway_terminal_bytes_sent_total",
        "counter",
        "Terminal bytes sent to browsers.",
        BYTES_TO_CLIENTS.get() as f64,
    );
    single(
        &mut out,
        "dispatch_gateway_terminal_bytes_received_total",
        "counter",
        "Terminal bytes received from browsers.",
        BYTES_FROM_CLIENTS.get() as f64,
    );
    family(
        &mut out,
        "dispatch_gateway_websockets_open",
        "gauge",
        "WebSocket connections open, by kind.",
    );
    for kind in SocketKind::ALL {
        let open = SOCKETS_OPEN[kind.index()].load(Ordering::Relaxed);
        sample(
            &mut out,
            "dispatch_gateway_websockets_open",
            &[("kind", kind.label())],
            open as f64,
        );
    }
    family(
        &mut out,
        "dispatch_gateway_websockets_opened_total",
        "counter",
        "WebSocket connections accepted, by kind.",
    );
    for kind in SocketKind::ALL {
        let opened = SOCKETS_OPENED[kind.index()].get();
        sample(
            &mut out,
            "dispatch_gateway_websockets_opened_total",
            &[("kind", kind.label())],
            opened as f64,
        );
    }
    family(
        &mut out,
        "dispatch_gateway_http_responses_total",
        "counter",
        "HTTP responses, by status class.",
    );
    for (i, counter) in RESPONSES.iter().enumerate() {
        let class = format!("{}xx", i + 1);
        sample(
            &mut out,
            "dispatch_gateway_http_responses_total",
            &[("code", &class)],
            counter.get() as f64,
        );
    }
    let http = *HTTP_LATENCY.lock().unwrap_or_else(|p| p.into_inner());
    family(
        &mut out,
        "dispatch_gateway_http_request_duration_seconds",
        "histogram",
        "Time to answer an HTTP request.",
    );
    histogram(
        &mut out,
        "dispatch_gateway_http_request_duration_seconds",
        &http,
    );
    let check = *BROKER_CHECK_LATENCY
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    family(
        &mut out,
        "dispatch_gateway_broker_check_duration_seconds",
        "histogram",
        "Round trip of the broker's gRPC health check.",
    );
    histogram(
        &mut out,
        "dispatch_gateway_broker_check_duration_seconds",
        &check,
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    family(out, name, kind, help);
    sample(out, name, &[], value);
}

/// One sample line; label values here are fixed identifiers (no escaping
/// needed beyond what [`escape`] does).
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = write!(out, "{{{}}}", labels.join(","));
    }
    let _ = writeln!(out, " {value}");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, h: &Histogram) {
    let bucket = format!("{name}_bucket");
    for (bound, count) in LATENCY_BUCKETS.iter().zip(h.buckets) {
        sample(out, &bucket, &[("le", &bound.to_string())], count as f64);
    }
    sample(out, &bucket, &[("le", "+Inf")], h.count as f64);
    sample(out, &format!("{name}_sum"), &[], h.sum);
    sample(out, &format!("{name}_count"), &[], h.count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sockets_are_counted_while_alive() {
        let before = SOCKETS_OPEN[SocketKind::Events.index()].load(Ordering::Relaxed);
        let socket = OpenSocket::new(SocketKind::Events);
        assert_eq!(
            SOCKETS_OPEN[SocketKind::Events.index()].load(Ordering::Relaxed),
            before + 1
        );
        drop(socket);
        assert_eq!(
            SOCKETS_OPEN[SocketKind::Events.index()].load(Ordering::Relaxed),
            before
        );
    }

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::new();
        h.observe(0.003);
        h.observe(20.0);
        let mut out = String::new();
        histogram(&mut out, "x", &h);
        assert!(out.contains("x_bucket{le=\"0.0025\"} 0\n"));
        assert!(out.contains("x_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("x_bucket{le=\"10\"} 1\n"));
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2\n"));
    }
}
