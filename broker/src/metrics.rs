//! The broker's Prometheus metrics: process-wide counters bumped where things
//! happen (sessions created and ended, PTY bytes), a gRPC latency histogram
//! fed by a tower layer, gauges read from the registry at scrape time, and
//! the small HTTP endpoint (hyper) that serves them
//! (`BROKER_METRICS_LISTEN`, `GET /metrics`). The exposition is written by `prometheus-client` in the
//! OpenMetrics text format, which Prometheus scrapes natively.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;

use crate::admin::BrokerState;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Sessions started since the process started.
pub static SESSIONS_CREATED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Sessions ended (by themselves, ended or killed).
pub static SESSIONS_ENDED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Bytes written to PTYs (viewers' input).
pub static BYTES_IN: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Bytes read from PTYs (programs' output).
pub static BYTES_OUT: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Admin calls refused for a missing or wrong admin token.
pub static ADMIN_AUTH_FAILURES: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Most distinct `method` labels kept; further ones count as `other`.
const MAX_METHODS: usize = 64;

/// The label of the gRPC latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type LatencyFamily = Family<MethodLabel, Histogram, fn() -> Histogram>;

/// gRPC handling time per method (time to the response headers; for
/// streams, until the stream is open).
static GRPC_LATENCY: LazyLock<LatencyFamily> =
    LazyLock::new(|| Family::new_with_constructor(latency_histogram as fn() -> Histogram));
/// The `method` labels in use, bounded by [`MAX_METHODS`].
static METHODS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The label recorded for the request path `path`: the path itself for
/// well-formed ones while fewer than [`MAX_METHODS`] are known, else `other`.
fn method_label(path: &str) -> String {
    let well_formed = path.len() <= 128
        && path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._".contains(&b));
    let mut methods = crate::sync::lock(&METHODS);
    if well_formed && (methods.contains(path) || methods.len() < MAX_METHODS) {
        methods.insert(path.to_owned());
        path.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Records one gRPC call.
pub fn observe_grpc(path: &str, elapsed: Duration) {
    let label = MethodLabel {
        method: method_label(path),
    };
    GRPC_LATENCY
        .get_or_create(&label)
        .observe(elapsed.as_secs_f64());
}

/// A tower layer timing every gRPC call of the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics(inner)
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the router.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S>(S);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let started = Instant::now();
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await;
            observe_grpc(&path, started.elapsed());
            response
        })
    }
}

/// A gauge holding `value` at this scrape.
fn gauge<N>(value: N) -> ConstGauge<N> {
    ConstGauge::new(value)
}

/// Every broker metric, the process-wide counters and histograms shared
/// and the gauges read from `state` now.
pub fn registry(state: &BrokerState) -> Registry {
    let mut registry = Registry::default();
    let figures = state.counts();
    registry.register(
        "dispatch_broker_build",
        "Version of the running broker",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry.register(
        "dispatch_broker_uptime_seconds",
        "Seconds since the broker started",
        gauge(state.uptime().as_secs_f64()),
    );
    registry.register(
        "dispatch_broker_sessions_created",
        "Sessions started",
        SESSIONS_CREATED.clone(),
    );
    registry.register(
        "dispatch_broker_sessions_ended",
        "Sessions ended (exited, ended or killed)",
        SESSIONS_ENDED.clone(),
    );
    registry.register(
        "dispatch_broker_sessions_running",
        "Sessions running now",
        gauge(figures.running as u64),
    );
    registry.register(
        "dispatch_broker_sessions_retained",
        "Ended sessions still listed within retention",
        gauge(figures.ended as u64),
    );
    registry.register(
        "dispatch_broker_sessions_max",
        "Session limit (BROKER_MAX_SESSIONS)",
        gauge(state.registry.config().max_sessions as u64),
    );
    registry.register(
        "dispatch_broker_draining",
        "1 while the broker refuses new sessions (admin drain)",
        gauge(u64::from(state.registry.is_draining())),
    );
    registry.register(
        "dispatch_broker_viewers",
        "Attached viewer streams, all sessions",
        gauge(figures.viewers as u64),
    );
    registry.register(
        "dispatch_broker_pty_input_bytes",
        "Bytes written to session PTYs",
        BYTES_IN.clone(),
    );
    registry.register(
        "dispatch_broker_pty_output_bytes",
        "Bytes read from session PTYs",
        BYTES_OUT.clone(),
    );
    registry.register(
        "dispatch_broker_admin_auth_failures",
        "Admin calls refused for a missing or wrong admin token",
        ADMIN_AUTH_FAILURES.clone(),
    );
    if let Some(index) = state.conversations() {
        let status = index.status();
        registry.register(
            "dispatch_broker_conversations",
            "Conversations in the index",
            gauge(status.conversations),
        );
        registry.register(
            "dispatch_broker_conversation_transcripts",
            "Transcript files indexed (subagents included)",
            gauge(status.transcripts),
        );
        registry.register(
            "dispatch_broker_conversation_bytes",
            "Bytes of transcripts indexed",
            gauge(status.bytes),
        );
        registry.register(
            "dispatch_broker_conversation_scans",
            "Full scans of the transcript folder",
            ConstCounter::new(status.scans),
        );
    }
    registry.register_with_unit(
        "dispatch_broker_grpc_request_duration",
        "Time to answer a gRPC call (for streams: to open it), by method",
        Unit::Seconds,
        GRPC_LATENCY.clone(),
    );
    registry
}

/// Every broker metric as OpenMetrics text.
pub fn render(state: &BrokerState) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry(state))
        .expect("writing to a String cannot fail");
    out
}

/// Time a metrics client has to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Metrics connections served at once.
const MAX_CONNECTIONS: usize = 32;

/// Serves `GET /metrics` over HTTP/1.1 on `listener` until `shutdown`, one
/// request per connection.
pub async fn serve(listener: TcpListener, state: BrokerState, shutdown: CancellationToken) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // too many scrapers at once: drop the connection
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = answer(&request, &state);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

/// The answer to one request: the metrics, 404 or 405.
fn answer<B>(request: &http::Request<B>, state: &BrokerState) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET | &http::Method::HEAD, "/metrics") => {
            (http::StatusCode::OK, CONTENT_TYPE, render(state))
        }
        (&http::Method::GET | &http::Method::HEAD, _) => (
            http::StatusCode::NOT_FOUND,
            PLAIN,
            "not found: GET /metrics\n".to_owned(),
        ),
        _ => (
            http::StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "GET /metrics\n".to_owned(),
        ),
    };
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if status == http::StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
    }
    response
}

/// The media type of error answers.
const PLAIN: &str = "text/plain; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_paths_share_one_label() {
        assert_eq!(method_label("/weird path?"), "other");
        assert_eq!(
            method_label("/dispatch.v1.Admin/GetStatus"),
            "/dispatch.v1.Admin/GetStatus"
        );
    }
}
