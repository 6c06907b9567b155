//! The Claude Code conversation browser's broker side: a read-only,
//! incrementally maintained index of the transcripts under
//! `CLAUDE_HOME/projects` (metadata only in memory; messages are read from
//! disk on demand) and the `dispatch.v1.Conversations` gRPC service.
//!
//! ```no_run
//! # async fn demo() {
//! use dispatch_broker::conversations::{ConversationIndex, ConversationsService, IndexConfig};
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let index = ConversationIndex::open(IndexConfig::new("/home/me/.claude"), shutdown).await;
//! let service = ConversationsService::new(index).into_server();
//! # }
//! ```

mod index;
mod messages;
mod pages;
mod pricing;
mod record;
mod scan;
mod search;
mod service;
mod stats;
mod usage;
mod usage_log;
mod watch;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use index::{ConversationIndex, IndexConfig, ListPage, ListQuery, SortBy};
pub use messages::{Cursor, page, read_messages};
pub use pages::{MessageMap, MessageMaps, PageRead};
pub use pricing::{BUILTIN_VERSION, Price, PriceTable};
pub use service::{ConversationError, ConversationsService};

impl ConversationIndex {
    /// Starts an index that fills in the background (the first full scan
    /// runs off the async threads; until it ends, lists are partial) and
    /// stays current until `shutdown` is cancelled. For servers that must
    /// answer at once; [`Self::open`] waits for the first scan instead.
    pub fn start(config: IndexConfig, shutdown: CancellationToken) -> Arc<Self> {
        let index = Arc::new(Self::new(config));
        watch::spawn(Arc::clone(&index), shutdown, true);
        index
    }

    /// Builds the index (the first full scan, off the async threads) and
    /// keeps it current until `shutdown` is cancelled.
    pub async fn open(config: IndexConfig, shutdown: CancellationToken) -> Arc<Self> {
        let index = Arc::new(Self::new(config));
        let scanning = Arc::clone(&index);
        let started = std::time::Instant::now();
        let _ = tokio::task::spawn_blocking(move || scanning.rescan()).await;
        log_scan(&index, started);
        watch::spawn(Arc::clone(&index), shutdown, false);
        index
    }
}

pub(crate) fn log_scan(index: &ConversationIndex, started: std::time::Instant) {
    let status = index.status();
    tracing::info!(
        conversations = status.conversations,
        transcripts = status.transcripts,
        corrupt_lines = status.corrupt_lines,
        broken_links = status.broken_links,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "conversation index built"
    );
}
