//! What every request handler shares: configuration, authentication, the
//! login limiter, the origin policy, the broker link and the shutdown signal.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::broker::Broker;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::origin::{HostPolicy, OriginPolicy};
use crate::public_url::PublicUrl;
use crate::ratelimit::FailureLimiter;

/// Shared gateway state (behind an `Arc`).
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub auth: Auth,
    pub limiter: FailureLimiter,
    /// The Prometheus counters, bumped where things happen.
    pub metrics: Metrics,
    pub origins: OriginPolicy,
    pub hosts: HostPolicy,
    pub broker: Broker,
    pub public_url: PublicUrl,
    /// Each session's egress through the proxy.
    pub egress: crate::egress::Ledger,
    /// Cancelled when the gateway shuts down; every long-lived task selects on it.
    pub shutdown: CancellationToken,
    /// The open WebSockets, awaited on shutdown so each gets its close frame.
    pub sockets: TaskTracker,
    /// When viewers last typed in each session (no webhook for those).
    pub typing: crate::notify::Typing,
    /// Web Push: the VAPID key and the subscriptions.
    pub push: std::sync::Arc<crate::push::Push>,
    /// Read-only share links.
    pub shares: std::sync::Arc<crate::shares::Shares>,
}

impl AppState {
    pub fn new(
        config: Config,
        auth: Auth,
        broker: Broker,
        push: crate::push::Push,
        shutdown: CancellationToken,
    ) -> Self {
        let shares = std::sync::Arc::new(crate::shares::Shares::open(&config, &auth));
        let metrics = Metrics::default();
        Self {
            auth,
            shares,
            limiter: FailureLimiter::new(
                config.login_burst,
                Duration::from_secs(config.login_refill_secs),
                &metrics,
            ),
            metrics,
            origins: OriginPolicy::new(&config.allowed_origins),
            hosts: HostPolicy::new(&config.public_hosts, &config.allowed_origins),
            broker,
            public_url: PublicUrl::default(),
            egress: crate::egress::Ledger::default(),
            shutdown,
            sockets: TaskTracker::new(),
            typing: Default::default(),
            push: std::sync::Arc::new(push),
            config,
        }
    }
}
