//! The HTTP server loop: accepts connections from a pre-bound listener and
//! serves HTTP/1.1 (with upgrades) and HTTP/2 through hyper, recording each
//! connection's peer address for the handlers. Stops accepting on shutdown
//! and lets open requests finish (bounded).

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use warp::Filter;

use crate::router::PeerAddr;

/// Most connections served at once; further ones wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 16_384;

/// Serves connections for one warp filter. Cheap to clone.
#[derive(Clone)]
pub struct ConnectionServer<F> {
    filter: F,
    limit: std::sync::Arc<tokio::sync::Semaphore>,
}

impl<F> std::fmt::Debug for ConnectionServer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionServer").finish_non_exhaustive()
    }
}

impl<F> ConnectionServer<F>
where
    F: Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    pub fn new(filter: F) -> Self {
        Self {
            filter,
            limit: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    /// Serves one connection until it closes (from the listener, or handed
    /// over by the tunnel). `peer` is the address on the other end.
    pub async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr) {
        let Ok(_permit) = self.limit.clone().acquire_owned().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let connection = Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(stream), self.service(peer))
            .into_owned();
        if let Err(err) = connection.await {
            tracing::debug!("connection ended: {err}");
        }
    }

    fn service(
        &self,
        peer: SocketAddr,
    ) -> TowerToHyperService<
        impl tower::Service<
            warp::http::Request<warp::hyper::body::Incoming>,
            Response = warp::reply::Response,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone
        + Send
        + 'static,
    > {
        let service = tower::ServiceBuilder::new()
            .map_request(
                move |mut request: warp::http::Request<warp::hyper::body::Incoming>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    crate::ws::PendingUpgrade::extract(&mut request);
                    request
                },
            )
            .service(warp::service(self.filter.clone()));
        TowerToHyperService::new(service)
    }

    /// Accepts until `shutdown`, then waits up to 10 s for open HTTP requests.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(permit) = self.limit.clone().acquire_owned().await else {
                break;
            };
            let filter = self.filter.clone();
            let service = tower::ServiceBuilder::new()
                .map_request(
                    move |mut request: warp::http::Request<warp::hyper::body::Incoming>| {
                        request.extensions_mut().insert(PeerAddr(peer));
                        crate::ws::PendingUpgrade::extract(&mut request);
                        request
                    },
                )
                .service(warp::service(filter));
            let builder = Builder::new(TokioExecutor::new());
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!("connection ended: {err}");
                }
                drop(permit);
            });
        }
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open after 10 s; closing them");
        }
    }
}
