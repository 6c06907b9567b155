//! The byte tunnel between a session and its upstream: both directions
//! copied as they come (TLS stays end to end, never looked at), counted,
//! half-closes passed on, and the tunnel closed after `EGRESS_IDLE_SECS`
//! without a byte either way or when the gateway shuts down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::audit::End;

/// Bytes read at once in each direction.
const BUFFER: usize = 64 * 1024;

/// Bytes each way.
#[derive(Debug, Default)]
pub struct Traffic {
    pub up: AtomicU64,
    pub down: AtomicU64,
}

/// The time of the last byte either way, in milliseconds since the start.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Relays between `client` and `upstream` until both sides are done, the
/// tunnel is idle for `idle`, or `shutdown`. `early` holds bytes the
/// client sent right after its request; they go upstream first.
pub async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    early: &[u8],
    idle: Duration,
    shutdown: &CancellationToken,
    traffic: &Traffic,
) -> End {
    let activity = Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    if !early.is_empty() {
        if upstream.write_all(early).await.is_err() {
            return End::Closed;
        }
        traffic.up.fetch_add(early.len() as u64, Ordering::Relaxed);
    }
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let both = async {
        // The first failure ends both directions.
        tokio::try_join!(
            pump(client_read, upstream_write, &traffic.up, &activity),
            pump(upstream_read, client_write, &traffic.down, &activity),
        )
    };
    tokio::select! {
        _ = both => End::Closed,
        () = idle_for(&activity, idle) => End::Idle,
        () = shutdown.cancelled() => End::Shutdown,
    }
}

/// Copies `from` into `to` until end of stream, then half-closes `to`.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    count: &AtomicU64,
    activity: &Activity,
) -> std::io::Result<()> {
    let mut buffer = vec![0; BUFFER];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buffer[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}

/// Returns once no byte went either way for `idle`.
async fn idle_for(activity: &Activity, idle: Duration) {
    loop {
        let deadline = activity.last() + idle;
        tokio::time::sleep_until(deadline).await;
        if activity.last() + idle <= Instant::now() {
            return;
        }
    }
}
