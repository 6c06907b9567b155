//! The pool of TCP connections to the tunnel server. Each one waits for
//! the server to hand it a visitor's connection, then passes it to the
//! gateway (see [`Destination`]); a finished connection is replaced.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backoff::Backoff;
use super::{Destination, Registration};

/// Limit for opening a connection to the tunnel server.
const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts, one a second, to reach the gateway's own listener.
const LOCAL_CONNECT_ATTEMPTS: u32 = 10;
/// How long one direction may stay open after the other has finished.
const HALF_CLOSED_LINGER: Duration = Duration::from_secs(30);
/// Waits before re-opening a connection the server closed unused.
const UNUSED_BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// Why the pool stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PoolEnd {
    /// The gateway is shutting down.
    Shutdown,
    /// The server stopped accepting connections: the registration is gone.
    /// `served` tells whether any visitor got through before that.
    Lost { served: bool },
}

/// Where the pool connects to.
#[derive(Debug, Clone)]
struct Remote {
    host: String,
    port: u16,
}

/// What became of one connection to the tunnel server.
enum Piped {
    /// It carried a visitor's connection to the gateway.
    Bridged,
    /// A visitor came but the gateway could not be reached.
    Dropped,
    /// The server closed it before using it.
    ClosedUnused,
    /// The pool is stopping.
    Stopped,
}

/// What the slots of one pool tell it.
#[derive(Debug, Default)]
struct Shared {
    /// Signalled when a slot opens a connection to the server.
    opened: Notify,
    /// Set once a visitor got through.
    served: AtomicBool,
}

/// Keeps `registration.connections` connections open until one of them can
/// no longer reach the server, or `shutdown` is cancelled. `on_open` runs
/// once, when the first connection is open (the tunnel is usable).
pub(crate) async fn serve(
    registration: &Registration,
    destination: &Destination,
    shutdown: &CancellationToken,
    on_open: impl FnOnce(),
) -> PoolEnd {
    let stop = shutdown.child_token();
    let shared = Arc::new(Shared::default());
    let remote = Remote {
        host: registration.remote_host.clone(),
        port: registration.remote_port,
    };
    let mut workers = JoinSet::new();
    for slot in 0..registration.connections {
        let span = tracing::debug_span!("tunnel_connection", id = %registration.id, slot);
        let work = keep_connection(
            remote.clone(),
            destination.clone(),
            stop.clone(),
            shared.clone(),
        );
        workers.spawn(work.instrument(span));
    }
    tracing::debug!(connections = registration.connections, "tunnel pool open");
    let mut on_open = Some(on_open);
    let lost = loop {
        tokio::select! {
            () = shutdown.cancelled() => break None,
            Some(ended) = workers.join_next() => break ended.ok().flatten(),
            () = shared.opened.notified(), if on_open.is_some() => {
                if let Some(on_open) = on_open.take() {
                    on_open();
                }
            }
        }
    };
    stop.cancel();
    while workers.join_next().await.is_some() {}
    if shutdown.is_cancelled() {
        return PoolEnd::Shutdown;
    }
    if let Some(error) = lost {
        tracing::warn!(%error, host = %remote.host, port = remote.port, "tunnel server unreachable");
    }
    PoolEnd::Lost {
        served: shared.served.load(Ordering::Relaxed),
    }
}

/// One slot of the pool: re-opens its connection each time it ends.
/// Returns the error once the server cannot be reached, `None` on stop.
async fn keep_connection(
    remote: Remote,
    destination: Destination,
    stop: CancellationToken,
    shared: Arc<Shared>,
) -> Option<io::Error> {
    let (first, longest) = UNUSED_BACKOFF;
    let mut unused = Backoff::new(first, longest);
    loop {
        let connected = tokio::select! {
            result = connect_remote(&remote) => result,
            () = stop.cancelled() => return None,
        };
        let stream = match connected {
            Ok(stream) => stream,
            Err(error) => return Some(error),
        };
        shared.opened.notify_one();
        match pipe(stream, &destination, &stop).await {
            Piped::Bridged => {
                shared.served.store(true, Ordering::Relaxed);
                unused.reset();
            }
            Piped::Dropped => unused.reset(),
            Piped::ClosedUnused => {
                tokio::select! {
                    () = tokio::time::sleep(unused.next_delay()) => {}
                    () = stop.cancelled() => return None,
                }
            }
            Piped::Stopped => return None,
        }
    }
}

async fn connect_remote(remote: &Remote) -> io::Result<TcpStream> {
    let connect = TcpStream::connect((remote.host.as_str(), remote.port));
    let stream = tokio::time::timeout(REMOTE_CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    // Notice a server that vanished without closing the connection.
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}

/// Waits for a visitor on `remote`, then passes the connection on to the
/// gateway until it is done.
async fn pipe(mut remote: TcpStream, destination: &Destination, stop: &CancellationToken) -> Piped {
    // Nothing is opened on the gateway's side before a visitor's first byte.
    let mut probe = [0; 1];
    let peeked = tokio::select! {
        peeked = remote.peek(&mut probe) => peeked,
        () = stop.cancelled() => return Piped::Stopped,
    };
    if !matches!(peeked, Ok(1..)) {
        return Piped::ClosedUnused;
    }
    tracing::debug!("visitor connected");
    match destination {
        Destination::Dial(local) => {
            let Some(mut gateway) = connect_local(*local, stop).await else {
                return if stop.is_cancelled() {
                    Piped::Stopped
                } else {
                    Piped::Dropped
                };
            };
            bridge(&mut remote, &mut gateway, stop).await;
        }
        Destination::Serve(serve) => {
            let Ok(peer) = remote.peer_addr() else {
                return Piped::Dropped;
            };
            tokio::select! {
                () = serve(remote, peer) => {}
                () = stop.cancelled() => {}
            }
        }
    }
    tracing::debug!("visitor disconnected");
    Piped::Bridged
}

/// Dials the gateway's listener, retrying while it refuses (as during a
/// restart); `None` when it stays unreachable or the pool stops.
async fn connect_local(local: SocketAddr, stop: &CancellationToken) -> Option<TcpStream> {
    for attempt in 1..=LOCAL_CONNECT_ATTEMPTS {
        let connected = tokio::select! {
            result = TcpStream::connect(local) => result,
            () = stop.cancelled() => return None,
        };
        match connected {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Err(error) => {
                tracing::warn!(%error, %local, attempt, "gateway listener unreachable");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return None,
        }
    }
    None
}

/// Copies both ways until both directions are finished, a half-closed
/// connection lingers too long, or the pool stops.
async fn bridge(remote: &mut TcpStream, gateway: &mut TcpStream, stop: &CancellationToken) {
    let (mut remote_read, mut remote_write) = remote.split();
    let (mut gateway_read, mut gateway_write) = gateway.split();
    let inbound = async {
        let _ = tokio::io::copy(&mut remote_read, &mut gateway_write).await;
        let _ = gateway_write.shutdown().await;
    };
    let outbound = async {
        let _ = tokio::io::copy(&mut gateway_read, &mut remote_write).await;
        let _ = remote_write.shutdown().await;
    };
    tokio::pin!(inbound, outbound);
    let both = async {
        tokio::select! {
            () = &mut inbound => {
                let _ = tokio::time::timeout(HALF_CLOSED_LINGER, &mut outbound).await;
            }
            () = &mut outbound => {
                let _ = tokio::time::timeout(HALF_CLOSED_LINGER, &mut inbound).await;
            }
        }
    };
    tokio::select! {
        () = both => {}
        () = stop.cancelled() => {}
    }
}
