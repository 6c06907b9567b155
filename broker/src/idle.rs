//! Idle exit (`BROKER_IDLE_EXIT_SECS`): a broker started for one gateway
//! (local mode) outlives that gateway while it has sessions, and stops by
//! itself once it has had no session and no call for the configured time,
//! or once the Unix socket file it listens on is removed or replaced (then
//! no gateway can ever reach it again).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::SessionRegistry;

/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(500);

/// When the last gRPC call arrived (any call, health checks included).
#[derive(Clone, Debug)]
pub struct LastCall {
    origin: Instant,
    millis: Arc<AtomicU64>,
}

impl Default for LastCall {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            millis: Arc::default(),
        }
    }
}

impl LastCall {
    /// Records a call now.
    pub fn touch(&self) {
        let now = self.origin.elapsed().as_millis() as u64;
        self.millis.store(now, Ordering::Relaxed);
    }

    /// Time since the last call (since creation when there was none).
    pub fn elapsed(&self) -> Duration {
        let last = Duration::from_millis(self.millis.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// The identity of a socket file: (device, inode).
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|meta| (meta.dev(), meta.ino()))
}

/// Requests shutdown (`stop`) once the broker is idle for `limit`, or once
/// `socket` no longer names the file bound at start.
pub async fn watch(
    registry: SessionRegistry,
    last_call: LastCall,
    limit: Duration,
    socket: Option<PathBuf>,
    stop: CancellationToken,
) {
    let bound = socket.as_deref().and_then(identity);
    let mut idle_since = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        if let Some(path) = &socket
            && identity(path) != bound
        {
            tracing::warn!(socket = %path.display(), "the socket was removed or replaced: stopping");
            stop.cancel();
            return;
        }
        if !registry.list().is_empty() {
            idle_since = Instant::now();
            continue;
        }
        if idle_since.elapsed() >= limit && last_call.elapsed() >= limit {
            tracing::info!(
                secs = limit.as_secs(),
                "no session and no call for BROKER_IDLE_EXIT_SECS: stopping"
            );
            stop.cancel();
            return;
        }
    }
}
