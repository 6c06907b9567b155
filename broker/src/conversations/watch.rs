//! Keeps the index current: file notifications (inotify through `notify`)
//! collected for a short debounce and applied to the changed files, plus a
//! slow periodic full rescan as a safety net (which also starts watching
//! `projects/` once it exists).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::index::ConversationIndex;

/// Notifications buffered before the watcher falls back to a full rescan.
const NOTIFY_BUFFER: usize = 4096;

/// What the notification thread hands to the refresh loop.
enum Change {
    Paths(Vec<PathBuf>),
    /// Notifications were lost (overflow, watcher error): rescan.
    Rescan,
}

/// Starts the refresh loop (after a first full scan when `scan_first`: the
/// watcher is set up before it, so nothing written meanwhile is missed); it
/// stops when `shutdown` is cancelled.
pub fn spawn(
    index: Arc<ConversationIndex>,
    shutdown: CancellationToken,
    scan_first: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::channel(NOTIFY_BUFFER);
        let mut watcher = start_watcher(&index, tx.clone());
        if scan_first {
            let started = std::time::Instant::now();
            apply(&index, None).await;
            super::log_scan(&index, started);
        }
        let mut rescan = tokio::time::interval(index.config().rescan_interval);
        rescan.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                change = rx.recv() => {
                    let Some(change) = change else { break };
                    let batch = collect_batch(&index, change, &mut rx).await;
                    apply(&index, batch).await;
                }
                _ = rescan.tick() => {
                    apply(&index, None).await;
                    if watcher.is_none() {
                        watcher = start_watcher(&index, tx.clone());
                    }
                }
            }
        }
        drop(watcher);
    })
}

/// Gathers the notifications of one debounce window; `None` means rescan.
async fn collect_batch(
    index: &ConversationIndex,
    first: Change,
    rx: &mut mpsc::Receiver<Change>,
) -> Option<BTreeSet<PathBuf>> {
    let mut paths = Some(BTreeSet::new());
    let add = |change: Change, paths: &mut Option<BTreeSet<PathBuf>>| match change {
        Change::Paths(list) => {
            if let Some(set) = paths.as_mut() {
                set.extend(list);
            }
        }
        Change::Rescan => *paths = None,
    };
    add(first, &mut paths);
    let deadline = tokio::time::Instant::now() + index.config().debounce;
    while let Ok(Some(change)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        add(change, &mut paths);
    }
    paths
}

async fn apply(index: &Arc<ConversationIndex>, batch: Option<BTreeSet<PathBuf>>) {
    let index = Arc::clone(index);
    let _ = tokio::task::spawn_blocking(move || match batch {
        Some(paths) => index.refresh_paths(&paths),
        None => index.rescan(),
    })
    .await;
}

fn start_watcher(
    index: &ConversationIndex,
    tx: mpsc::Sender<Change>,
) -> Option<RecommendedWatcher> {
    let projects = index.projects_dir().to_owned();
    if !index.config().notifications || !projects.is_dir() {
        return None;
    }
    let handler = move |result: notify::Result<Event>| {
        let change = match result {
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => return,
            Ok(event) if event.need_rescan() => Change::Rescan,
            Ok(event) => Change::Paths(event.paths),
            Err(_) => Change::Rescan,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(change) {
            let _ = tx.try_send(Change::Rescan);
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file notifications unavailable; relying on periodic rescans");
            return None;
        }
    };
    match watcher.watch(&projects, RecursiveMode::Recursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the projects folder; relying on periodic rescans");
            None
        }
    }
}
