//! The broker's Prometheus metrics: [`Metrics`], the counters and the gRPC
//! latency histogram that the registry, the sessions and the services bump
//! (one handle made by the broker and passed to each of them), the gauges
//! read from the broker at scrape time ([`Gauges`]), and the small HTTP
//! endpoint (hyper) that serves them (`BROKER_METRICS_LISTEN`,
//! `GET /metrics`). The exposition is written by `prometheus-client` in the
//! OpenMetrics text format, which Prometheus scrapes natively.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dispatch_proto::v1 as pb;
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

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// The broker's counters, shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct Metrics(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    /// Sessions started.
    sessions_created: Counter,
    /// Sessions ended (by themselves, ended or killed).
    sessions_ended: Counter,
    /// Bytes written to PTYs (viewers' input).
    bytes_in: Counter,
    /// Bytes read from PTYs (programs' output).
    bytes_out: Counter,
    /// Admin calls refused for a missing or wrong admin token.
    admin_auth_failures: Counter,
    /// gRPC handling time per method (time to the response headers; for
    /// streams, until the stream is open).
    grpc_latency: LatencyFamily,
    /// The `method` labels in use, bounded by [`MAX_METHODS`].
    methods: Mutex<BTreeSet<String>>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            sessions_created: Counter::default(),
            sessions_ended: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            admin_auth_failures: Counter::default(),
            grpc_latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            methods: Mutex::new(BTreeSet::new()),
        }
    }
}

/// Figures read from the broker at one scrape.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    pub uptime: Duration,
    pub running: usize,
    /// Ended sessions still listed within retention.
    pub retained: usize,
    pub viewers: usize,
    pub max_sessions: usize,
    pub draining: bool,
    /// The conversation index's size.
    pub conversations: pb::IndexStatus,
}

impl Metrics {
    /// Counts one session started.
    pub fn session_created(&self) {
        self.0.sessions_created.inc();
    }

    /// Sessions started so far.
    pub fn sessions_created(&self) -> u64 {
        self.0.sessions_created.get()
    }

    /// Counts one session ended.
    pub fn session_ended(&self) {
        self.0.sessions_ended.inc();
    }

    /// Counts `bytes` written to a PTY.
    pub fn pty_input(&self, bytes: usize) {
        self.0.bytes_in.inc_by(bytes as u64);
    }

    /// Counts `bytes` read from a PTY.
    pub fn pty_output(&self, bytes: usize) {
        self.0.bytes_out.inc_by(bytes as u64);
    }

    /// Counts one admin call refused for its token.
    pub fn admin_auth_failed(&self) {
        self.0.admin_auth_failures.inc();
    }

    /// Records one gRPC call.
    pub fn observe_grpc(&self, path: &str, elapsed: Duration) {
        let label = MethodLabel {
            method: self.method_label(path),
        };
        self.0
            .grpc_latency
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    /// The label recorded for the request path `path`: the path itself for
    /// well-formed ones while fewer than [`MAX_METHODS`] are known, else `other`.
    fn method_label(&self, path: &str) -> String {
        let well_formed = path.len() <= 128
            && path.starts_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._".contains(&b));
        let mut methods = crate::sync::lock(&self.0.methods);
        if well_formed && (methods.contains(path) || methods.len() < MAX_METHODS) {
            methods.insert(path.to_owned());
            path.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// A tower layer timing every gRPC call into these metrics.
    pub fn grpc_layer(&self) -> GrpcMetricsLayer {
        GrpcMetricsLayer(self.clone())
    }

    /// Every broker metric: the counters and histograms, and `gauges`.
    pub fn registry(&self, gauges: &Gauges) -> Registry {
        let mut registry = Registry::default();
        register_gauges(&mut registry, gauges);
        let counters = &*self.0;
        registry.register(
            "dispatch_broker_sessions_created",
            "Sessions started",
            counters.sessions_created.clone(),
        );
        registry.register(
            "dispatch_broker_sessions_ended",
            "Sessions ended (exited, ended or killed)",
            counters.sessions_ended.clone(),
        );
        registry.register(
            "dispatch_broker_pty_input_bytes",
            "Bytes written to session PTYs",
            counters.bytes_in.clone(),
        );
        registry.register(
            "dispatch_broker_pty_output_bytes",
            "Bytes read from session PTYs",
            counters.bytes_out.clone(),
        );
        registry.register(
            "dispatch_broker_admin_auth_failures",
            "Admin calls refused for a missing or wrong admin token",
            counters.admin_auth_failures.clone(),
        );
        registry.register_with_unit(
            "dispatch_broker_grpc_request_duration",
            "Time to answer a gRPC call (for streams: to open it), by method",
            Unit::Seconds,
            counters.grpc_latency.clone(),
        );
        registry
    }

    /// Every broker metric as OpenMetrics text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry(gauges))
            .expect("writing to a String cannot fail");
        out
    }
}

/// A tower layer timing every gRPC call of the server.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer(Metrics);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics(inner, self.0.clone())
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the router.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S>(S, Metrics);

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
        let metrics = self.1.clone();
        Box::pin(async move {
            let response = response.await;
            metrics.observe_grpc(&path, started.elapsed());
            response
        })
    }
}

/// A gauge holding `value` at this scrape.
fn gauge<N>(value: N) -> ConstGauge<N> {
    ConstGauge::new(value)
}

/// The figures of this scrape: build, uptime, sessions, conversation index.
fn register_gauges(registry: &mut Registry, gauges: &Gauges) {
    registry.register(
        "dispatch_broker_build",
        "Version of the running broker",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry.register(
        "dispatch_broker_uptime_seconds",
        "Seconds since the broker started",
        gauge(gauges.uptime.as_secs_f64()),
    );
    registry.register(
        "dispatch_broker_sessions_running",
        "Sessions running now",
        gauge(gauges.running as u64),
    );
    registry.register(
        "dispatch_broker_sessions_retained",
        "Ended sessions still listed within retention",
        gauge(gauges.retained as u64),
    );
    registry.register(
        "dispatch_broker_sessions_max",
        "Session limit (BROKER_MAX_SESSIONS)",
        gauge(gauges.max_sessions as u64),
    );
    registry.register(
        "dispatch_broker_draining",
        "1 while the broker refuses new sessions (admin drain)",
        gauge(u64::from(gauges.draining)),
    );
    registry.register(
        "dispatch_broker_viewers",
        "Attached viewer streams, all sessions",
        gauge(gauges.viewers as u64),
    );
    let status = &gauges.conversations;
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

/// Time a metrics client has to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Metrics connections served at once.
const MAX_CONNECTIONS: usize = 32;

/// What the endpoint serves: the exposition at this instant.
pub trait Exposition: Clone + Send + Sync + 'static {
    fn render(&self) -> String;
}

/// Serves `GET /metrics` (`exposition`'s text) over HTTP/1.1 on `listener`
/// until `shutdown`, one request per connection.
pub async fn serve(
    listener: TcpListener,
    exposition: impl Exposition,
    shutdown: CancellationToken,
) {
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
        let exposition = exposition.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = answer(&request, &exposition);
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
fn answer<B>(
    request: &http::Request<B>,
    exposition: &impl Exposition,
) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET | &http::Method::HEAD, "/metrics") => {
            (http::StatusCode::OK, CONTENT_TYPE, exposition.render())
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
        let metrics = Metrics::default();
        assert_eq!(metrics.method_label("/weird path?"), "other");
        assert_eq!(
            metrics.method_label("/dispatch.v1.Admin/GetStatus"),
            "/dispatch.v1.Admin/GetStatus"
        );
    }
}
