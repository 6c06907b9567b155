//! The broker's Prometheus metrics: process-wide counters bumped where things
//! happen (sessions created and ended, PTY bytes), a gRPC latency histogram
//! fed by a tower layer, gauges read from the registry at scrape time, and
//! the small HTTP endpoint that serves them as Prometheus text
//! (`BROKER_METRICS_LISTEN`, `GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;

use crate::admin::BrokerState;

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

/// Sessions started since the process started.
pub static SESSIONS_CREATED: Counter = Counter::new();
/// Sessions ended (by themselves, ended or killed).
pub static SESSIONS_ENDED: Counter = Counter::new();
/// Bytes written to PTYs (viewers' input).
pub static BYTES_IN: Counter = Counter::new();
/// Bytes read from PTYs (programs' output).
pub static BYTES_OUT: Counter = Counter::new();
/// Admin calls refused for a missing or wrong admin token.
pub static ADMIN_AUTH_FAILURES: Counter = Counter::new();

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Most distinct `method` labels kept; further ones count as `other`.
const MAX_METHODS: usize = 64;

/// A latency histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// gRPC handling time per method (time to the response headers; for
/// streams, until the stream is open).
static GRPC_LATENCY: LazyLock<Mutex<BTreeMap<String, Histogram>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Records one gRPC call.
pub fn observe_grpc(path: &str, elapsed: Duration) {
    let mut map = GRPC_LATENCY.lock().unwrap_or_else(|p| p.into_inner());
    let known = path.len() <= 128
        && path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._".contains(&b));
    let label = if known && (map.contains_key(path) || map.len() < MAX_METHODS) {
        path
    } else {
        "other"
    };
    map.entry(label.to_owned())
        .or_default()
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

/// Writes Prometheus text exposition format.
#[derive(Default)]
pub struct Exposition(String);

impl Exposition {
    /// `# HELP` and `# TYPE` lines of a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        self
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape_label(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", format_value(value));
        self
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// A histogram's bucket, sum and count samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let bounds = LATENCY_BUCKETS.iter().map(|b| format_value(*b));
        let counts = h.buckets.iter().copied();
        for (le, count) in bounds
            .chain(std::iter::once("+Inf".to_owned()))
            .zip(counts.chain(std::iter::once(h.count)))
        {
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.0
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// Every broker metric as Prometheus text.
pub fn render(state: &BrokerState) -> String {
    let mut out = Exposition::default();
    let figures = state.counts();
    out.family(
        "dispatch_broker_build_info",
        "gauge",
        "Version of the running broker.",
    )
    .sample(
        "dispatch_broker_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.single(
        "dispatch_broker_uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
        state.uptime().as_secs_f64(),
    )
    .single(
        "dispatch_broker_sessions_created_total",
        "counter",
        "Sessions started.",
        SESSIONS_CREATED.get() as f64,
    )
    .single(
        "dispatch_broker_sessions_ended_total",
        "counter",
        "Sessions ended (exited, ended or killed).",
        SESSIONS_ENDED.get() as f64,
    )
    .single(
        "dispatch_broker_sessions_running",
        "gauge",
        "Sessions running now.",
        figures.running as f64,
    )
    .single(
        "dispatch_broker_sessions_retained",
        "gauge",
        "Ended sessions still listed within retention.",
        figures.ended as f64,
    )
    .single(
        "dispatch_broker_sessions_max",
        "gauge",
        "Session limit (BROKER_MAX_SESSIONS).",
        state.registry.config().max_sessions as f64,
    )
    .single(
        "dispatch_broker_draining",
        "gauge",
        "1 while the broker refuses new sessions (admin drain).",
        if state.registry.is_draining() {
            1.0
        } else {
            0.0
        },
    )
    .single(
        "dispatch_broker_viewers",
        "gauge",
        "Attached viewer streams, all sessions.",
        figures.viewers as f64,
    )
    .single(
        "dispatch_broker_pty_input_bytes_total",
        "counter",
        "Bytes written to session PTYs.",
        BYTES_IN.get() as f64,
    )
    .single(
        "dispatch_broker_pty_output_bytes_total",
        "counter",
        "Bytes read from session PTYs.",
        BYTES_OUT.get() as f64,
    )
    .single(
        "dispatch_broker_admin_auth_failures_total",
        "counter",
        "Admin calls refused for a missing or wrong admin token.",
        ADMIN_AUTH_FAILURES.get() as f64,
    );
    if let Some(index) = state.conversations() {
        let status = index.status();
        out.single(
            "dispatch_broker_conversations",
            "gauge",
            "Conversations in the index.",
            f64::from(status.conversations),
        )
        .single(
            "dispatch_broker_conversation_transcripts",
            "gauge",
            "Transcript files indexed (subagents included).",
            f64::from(status.transcripts),
        )
        .single(
            "dispatch_broker_conversation_bytes",
            "gauge",
            "Bytes of transcripts indexed.",
            status.bytes as f64,
        )
        .single(
            "dispatch_broker_conversation_scans_total",
            "counter",
            "Full scans of the transcript folder.",
            status.scans as f64,
        );
    }
    let latency = GRPC_LATENCY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let name = "dispatch_broker_grpc_request_duration_seconds";
    out.family(
        name,
        "histogram",
        "Time to answer a gRPC call (for streams: to open it), by method.",
    );
    for (method, histogram) in &latency {
        out.histogram(name, &[("method", method)], histogram);
    }
    out.finish()
}

/// Longest request head read from a metrics client.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Time a metrics client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Metrics connections served at once.
const MAX_CONNECTIONS: usize = 32;

/// Serves `GET /metrics` on `listener` until `shutdown`.
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
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &state)).await;
            drop(permit);
        });
    }
}

/// Answers one HTTP/1.x request and closes the connection.
async fn answer(mut stream: TcpStream, state: &BrokerState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    match (method, path) {
        (b"GET" | b"HEAD", Some(b"/metrics")) => {
            let body = render(state);
            let body = if method == b"HEAD" { "" } else { &body };
            respond(&mut stream, "200 OK", body).await
        }
        (b"GET" | b"HEAD", Some(_)) => respond(&mut stream, "404 Not Found", "not found\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "GET /metrics\n").await,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.002);
        h.observe(3.0);
        let mut out = Exposition::default();
        out.histogram("x", &[("method", "/a")], &h);
        let text = out.finish();
        assert!(text.contains("x_bucket{method=\"/a\",le=\"0.001\"} 0\n"));
        assert!(text.contains("x_bucket{method=\"/a\",le=\"0.0025\"} 1\n"));
        assert!(text.contains("x_bucket{method=\"/a\",le=\"5\"} 2\n"));
        assert!(text.contains("x_bucket{method=\"/a\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("x_count{method=\"/a\"} 2\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.sample("m", &[("l", "a\"b\\c\nd")], 1.0);
        assert_eq!(out.finish(), "m{l=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn odd_paths_share_one_label() {
        observe_grpc("/weird path?", Duration::from_millis(1));
        let map = GRPC_LATENCY.lock().unwrap();
        assert!(map.contains_key("other"));
        assert!(!map.keys().any(|k| k.contains(' ')));
    }
}
