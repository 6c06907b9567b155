//! [`BrokerState`]: what the Admin service and the metrics endpoint observe
//! of a running broker (its sessions, the conversation index, its counters
//! and start time), built whole once the broker's parts exist.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatch_proto::time::now_ms;

use crate::conversations::ConversationIndex;
use crate::metrics::{Exposition, Gauges, Metrics};
use crate::registry::SessionRegistry;

/// What the Admin service and the metrics endpoint observe of the broker.
#[derive(Clone)]
pub struct BrokerState {
    pub registry: SessionRegistry,
    conversations: Arc<ConversationIndex>,
    metrics: Metrics,
    started: Instant,
    started_at_ms: i64,
}

impl std::fmt::Debug for BrokerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerState").finish_non_exhaustive()
    }
}

/// Session counts at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionCounts {
    pub running: usize,
    pub ended: usize,
    pub viewers: usize,
}

impl BrokerState {
    /// The state of a broker starting now.
    pub fn new(
        registry: SessionRegistry,
        conversations: Arc<ConversationIndex>,
        metrics: Metrics,
    ) -> Self {
        Self {
            registry,
            conversations,
            metrics,
            started: Instant::now(),
            started_at_ms: now_ms(),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn started_at_ms(&self) -> i64 {
        self.started_at_ms
    }

    pub fn conversations(&self) -> &Arc<ConversationIndex> {
        &self.conversations
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn counts(&self) -> SessionCounts {
        let mut counts = SessionCounts::default();
        for session in self.registry.list() {
            let stats = session.stats();
            if session.is_running() {
                counts.running += 1;
            } else {
                counts.ended += 1;
            }
            counts.viewers += stats.viewers;
        }
        counts
    }

    /// The figures a scrape reads now.
    pub fn gauges(&self) -> Gauges {
        let counts = self.counts();
        Gauges {
            uptime: self.uptime(),
            running: counts.running,
            retained: counts.ended,
            viewers: counts.viewers,
            max_sessions: self.registry.config().max_sessions,
            draining: self.registry.is_draining(),
            conversations: self.conversations.status(),
        }
    }
}

impl Exposition for BrokerState {
    fn render(&self) -> String {
        self.metrics.render(&self.gauges())
    }
}
