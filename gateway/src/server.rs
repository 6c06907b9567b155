//! The HTTP server loop: accepts connections from a pre-bound listener and
//! serves HTTP/1.1 (with upgrades) and HTTP/2 through hyper, recording each
//! connection's peer address for the handlers. Stops accepting on shutdown
//! and lets open requests finish (bounded).
//!
//! Every connection is served under [`ConnectionLimits`], so one client
//! cannot starve the others: a total and a per-client connection cap
//! (refused at accept with 503), a header-read timeout, an idle timeout for
//! connections with no request in progress, a request body deadline (408)
//! and a keep-alive request limit. An upgraded WebSocket leaves these rules
//! (and the connection counts) and keeps its own: ping/pong and the
//! credential's lifetime.

mod activity;
mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;
use warp::Filter;
use warp::http::{HeaderValue, Request, StatusCode, Version, header};
use warp::hyper::body::{Body, Incoming};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::router::PeerAddr;
use activity::{Activity, Deadline, InFlight, Tracked};
pub use limits::ConnectionLimits;
use limits::{Admission, Closing, Slots};

/// Time given to an idle connection to close after being told to.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves connections for one warp filter. Cheap to clone.
#[derive(Clone)]
pub struct ConnectionServer<F> {
    filter: F,
    limits: Arc<ConnectionLimits>,
    slots: Arc<Slots>,
    metrics: Metrics,
    connections: TaskTracker,
    shutdown: CancellationToken,
}

impl<F> std::fmt::Debug for ConnectionServer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionServer")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<F> ConnectionServer<F>
where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    /// A server for `filter` under `config`'s limits, counting its
    /// connections in `metrics`.
    pub fn new(filter: F, config: &Config, metrics: &Metrics) -> Self {
        let limits = ConnectionLimits::from_config(config);
        Self {
            filter,
            slots: Slots::new(&limits, metrics),
            metrics: metrics.clone(),
            limits: Arc::new(limits),
            connections: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Serves one connection handed over by the tunnel until it closes. The
    /// tunnel speaks for many clients, so only the total cap applies.
    pub async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr) {
        match self.slots.admit(None) {
            Ok(admission) => self.serve_stream(stream, peer, admission).await,
            Err(refusal) => {
                refusal.record(peer.ip(), self.limits.max_connections, &self.metrics);
                limits::refuse(stream, refusal).await;
            }
        }
    }

    /// Accepts until `shutdown`, then waits up to 10 s for open HTTP requests.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.cancelled() => break,
            };
            match accepted {
                Ok((stream, peer)) => self.accept(stream, peer),
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        self.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(Duration::from_secs(10), self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open after 10 s; closing them");
        }
    }

    /// Admits an accepted connection and serves it, or refuses it with 503.
    fn accept(&self, stream: TcpStream, peer: SocketAddr) {
        let ip = peer.ip();
        let client = (!self.limits.trust_proxy.trusts(ip)).then_some(ip);
        match self.slots.admit(client) {
            Ok(admission) => {
                let server = self.clone();
                self.connections
                    .spawn(async move { server.serve_stream(stream, peer, admission).await });
            }
            Err(refusal) => {
                let limit = match refusal {
                    limits::Refusal::ServerFull => self.limits.max_connections,
                    limits::Refusal::ClientFull => self.limits.max_per_client,
                };
                refusal.record(ip, limit, &self.metrics);
                tokio::spawn(limits::refuse(stream, refusal));
            }
        }
    }

    /// Serves one admitted connection until it closes, upgrades, or a limit
    /// or shutdown closes it.
    async fn serve_stream(&self, stream: TcpStream, peer: SocketAddr, admission: Admission) {
        let _ = stream.set_nodelay(true);
        if self.limits.tcp_notsent_lowat > 0 {
            let lowat = self.limits.tcp_notsent_lowat;
            let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(lowat);
        }
        let activity = Activity::new(self.limits.max_requests);
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        builder.http2().timer(TokioTimer::new());
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                self.service(peer, activity.clone()),
            )
            .into_owned();
        tokio::pin!(connection);
        let closing = tokio::select! {
            ended = connection.as_mut() => {
                connection_ended(ended, peer, &self.metrics);
                return;
            }
            closing = activity.until_close(self.limits.idle_timeout) => closing,
            _ = self.shutdown.cancelled() => Closing::Shutdown,
        };
        closing.record(peer.ip(), &self.metrics);
        connection.as_mut().graceful_shutdown();
        if closing == Closing::IdleTimeout {
            let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
        } else {
            let _ = connection.await;
        }
        drop(admission);
    }

    /// The connection's service: the warp filter, with the peer address and
    /// pending upgrade as extensions, the body deadline, and the request
    /// counted as in progress until its response body is written.
    fn service(
        &self,
        peer: SocketAddr,
        activity: Arc<Activity>,
    ) -> TowerToHyperService<
        impl tower::Service<
            Request<Incoming>,
            Response = warp::http::Response<
                Tracked<
                    impl Body<Data = bytes::Bytes, Error = warp::Error> + Send + Unpin + 'static,
                >,
            >,
            Error = Infallible,
            Future = impl Send,
        > + Clone
        + Send
        + 'static,
    > {
        let warp_service = warp::service(self.filter.clone());
        let limits = self.limits.clone();
        let metrics = self.metrics.clone();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            let mut warp_service = warp_service.clone();
            let limits = limits.clone();
            let metrics = metrics.clone();
            let (in_flight, last) = activity.begin();
            async move {
                request.extensions_mut().insert(PeerAddr(peer));
                crate::ws::PendingUpgrade::extract(&mut request, limits.max_ws_message);
                let version = request.version();
                let expired = Arc::new(AtomicBool::new(false));
                let request =
                    request.map(|body| Deadline::new(body, limits.body_timeout, expired.clone()));
                let response = warp_service.call(request).await?;
                let response = if expired.load(Ordering::Acquire) {
                    Closing::BodyTimeout.record(peer.ip(), &metrics);
                    body_timeout_response(limits.body_timeout)
                } else {
                    response
                };
                Ok(finish(response, version, last, in_flight))
            }
        });
        TowerToHyperService::new(service)
    }
}

/// The 408 answer to a body that did not arrive in time.
fn body_timeout_response(limit: Duration) -> warp::reply::Response {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {} s",
            limit.as_secs()
        ),
    )
    .into_response()
}

/// Marks the response of a connection's last request (HTTP/1: `Connection:
/// close`) and ties the request's in-progress guard to its body.
fn finish(
    mut response: warp::reply::Response,
    version: Version,
    last: bool,
    in_flight: InFlight,
) -> warp::http::Response<
    Tracked<impl Body<Data = bytes::Bytes, Error = warp::Error> + Send + Unpin + 'static>,
> {
    let closes = last || response.status() == StatusCode::REQUEST_TIMEOUT;
    let http1 = matches!(version, Version::HTTP_10 | Version::HTTP_11);
    if closes && http1 && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let (parts, body) = response.into_parts();
    warp::http::Response::from_parts(parts, Tracked::new(body, in_flight))
}

/// Logs how a connection ended on its own (the header timeout is hyper's,
/// counted in `metrics`).
fn connection_ended(
    ended: Result<(), Box<dyn std::error::Error + Send + Sync>>,
    peer: SocketAddr,
    metrics: &Metrics,
) {
    let Err(err) = ended else { return };
    let timed_out = err
        .downcast_ref::<warp::hyper::Error>()
        .is_some_and(warp::hyper::Error::is_timeout);
    if timed_out {
        Closing::HeaderTimeout.record(peer.ip(), metrics);
    } else {
        tracing::debug!("connection ended: {err}");
    }
}
