//! Read-only share links: a link that shows one session live, read-only, to
//! someone without the key (docs/protocol.md, Share links; docs/security.md).
//!
//! This module owns the links: their settings ([`ShareConfig`]), the
//! registry ([`Shares`]: create, list, revoke, expire, count viewers), its
//! file in the state directory ([`store`]), the secrets and cookies
//! ([`secret`]) and the HTTP side ([`http`]: the owner's routes, the
//! secret-for-cookie exchange, the viewer's page data and socket).
//!
//! A link is `/share#<id>.<secret>`: the secret travels in the fragment only
//! and is exchanged by the page for a cookie scoped to that share. Links die
//! with their session, at expiry, on revocation (their viewers' sockets
//! close with 4401 at once) and when the key changes. The viewer's socket is
//! the terminal bridge ([`crate::terminal`]) with a [`Credential::Share`]:
//! the gateway forwards no input, resize or end from it, and attaches to the
//! broker with `read_only`, which the broker enforces on its own.

pub mod http;
pub mod secret;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dispatch_proto::time::now_ms;
use tokio::sync::watch;
use warp::http::StatusCode;

use crate::auth::{Auth, Credential};
use crate::error::ApiError;
use crate::protocol::shares::ShareInfo;
use crate::state_dir::StateDir;

/// The share links' limits.
#[derive(clap::Args, Clone, Debug)]
pub struct ShareConfig {
    /// Share links one session may have at once; 0 turns sharing off.
    #[arg(long, env = "MAX_SHARES_PER_SESSION", default_value_t = 10)]
    pub max_shares_per_session: usize,
    /// Longest lifetime of a share link, in seconds (also the lifetime of a
    /// link created without one).
    #[arg(long, env = "SHARE_MAX_TTL_SECS", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub share_max_ttl_secs: u64,
}

/// Shortest lifetime a link may be given, in seconds.
pub const MIN_TTL_SECS: u64 = 1;

/// One share link.
#[derive(Clone, Debug)]
pub struct Link {
    pub id: String,
    pub session_id: String,
    /// [`secret::verifier`] of its secret.
    pub verifier: [u8; 32],
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Its viewers' sockets open now.
    pub viewers: u32,
}

impl Link {
    fn info(&self) -> ShareInfo {
        ShareInfo {
            id: self.id.clone(),
            session_id: self.session_id.clone(),
            created_at: self.created_at_ms,
            expires_at: self.expires_at_ms,
            viewers: self.viewers,
        }
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms <= now_ms
    }

    /// Seconds left (for a cookie's `Max-Age` and a credential's expiry).
    pub fn secs_left(&self) -> u64 {
        u64::try_from(self.expires_at_ms - now_ms()).unwrap_or(0) / 1000
    }

    /// The credential of a viewer of this link; it expires no earlier than
    /// the link (whole seconds, rounded up).
    pub fn credential(&self) -> Credential {
        Credential::Share {
            share: self.id.clone(),
            expires: u64::try_from(self.expires_at_ms.saturating_add(999) / 1000).unwrap_or(0),
        }
    }
}

/// Every live share link, kept in the state directory.
#[derive(Debug)]
pub struct Shares {
    config: ShareConfig,
    store: store::Store,
    links: Mutex<HashMap<String, Link>>,
    /// Bumped whenever a link goes; viewers' sockets recheck theirs.
    removed: watch::Sender<u64>,
}

impl Shares {
    /// The links saved in `config`'s state directory under `auth`'s key. A
    /// file that cannot be read is reported and replaced at the next change.
    pub fn open(config: &crate::Config, auth: &Auth) -> Self {
        let dir = config
            .state_dir()
            .and_then(|path| StateDir::open(&path).ok());
        Self::with_store(config.shares.clone(), store::Store::new(dir), auth)
    }

    /// Links kept in memory only.
    pub fn in_memory(config: ShareConfig) -> Self {
        Self {
            config,
            store: store::Store::new(None),
            links: Mutex::new(HashMap::new()),
            removed: watch::channel(0).0,
        }
    }

    fn with_store(config: ShareConfig, store: store::Store, auth: &Auth) -> Self {
        let loaded = store.load(auth).unwrap_or_else(|err| {
            tracing::error!(file = store::FILE, %err, "the share links file is unreadable: no link opens");
            Vec::new()
        });
        let now = now_ms();
        let links = loaded
            .into_iter()
            .filter(|l| !l.expired(now))
            .map(|l| (l.id.clone(), l))
            .collect();
        Self {
            config,
            store,
            links: Mutex::new(links),
            removed: watch::channel(0).0,
        }
    }

    pub fn config(&self) -> &ShareConfig {
        &self.config
    }

    /// A new link to `session_id`, good for `ttl`; returns it and its secret.
    pub fn create(
        &self,
        auth: &Auth,
        session_id: &str,
        ttl: Duration,
    ) -> Result<(ShareInfo, String), ApiError> {
        let max = self.config.max_shares_per_session;
        if max == 0 {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "share links are turned off (MAX_SHARES_PER_SESSION=0)",
            ));
        }
        let mut links = self.lock_live();
        let existing = links
            .values()
            .filter(|l| l.session_id == session_id)
            .count();
        if existing >= max {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "this session already has {existing} share links (MAX_SHARES_PER_SESSION={max}); revoke one first"
                ),
            ));
        }
        let (id, secret) = (secret::new_id(), secret::new_secret());
        let now = now_ms();
        let link = Link {
            verifier: secret::verifier(auth, &id, &secret),
            id: id.clone(),
            session_id: session_id.to_owned(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl.as_millis() as i64),
            viewers: 0,
        };
        let info = link.info();
        links.insert(id, link);
        self.store.save(auth, links.values());
        Ok((info, secret))
    }

    /// `session_id`'s live links, oldest first.
    pub fn list(&self, session_id: &str) -> Vec<ShareInfo> {
        let links = self.lock_live();
        let mut list: Vec<ShareInfo> = links
            .values()
            .filter(|l| l.session_id == session_id)
            .map(Link::info)
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list
    }

    /// The live link `id`.
    pub fn get(&self, id: &str) -> Option<Link> {
        self.lock_live().get(id).cloned()
    }

    /// Revokes `session_id`'s link `id`; whether there was one.
    pub fn revoke(&self, auth: &Auth, session_id: &str, id: &str) -> bool {
        let mut links = self.lock_live();
        if links.get(id).is_none_or(|l| l.session_id != session_id) {
            return false;
        }
        links.remove(id);
        self.store.save(auth, links.values());
        drop(links);
        tracing::info!(share = id, session = session_id, "share link revoked");
        self.removed.send_modify(|g| *g += 1);
        true
    }

    /// Drops every link of sessions not in `running` (they ended).
    pub fn retain_sessions(&self, auth: &Auth, running: &HashSet<String>) {
        self.remove_where(auth, |l| !running.contains(&l.session_id));
    }

    /// Drops every link of `session_id` (it ended).
    pub fn forget_session(&self, auth: &Auth, session_id: &str) {
        self.remove_where(auth, |l| l.session_id == session_id);
    }

    fn remove_where(&self, auth: &Auth, doomed: impl Fn(&Link) -> bool) {
        let mut links = self.lock_live();
        let before = links.len();
        links.retain(|_, l| !doomed(l));
        if links.len() != before {
            self.store.save(auth, links.values());
            drop(links);
            self.removed.send_modify(|g| *g += 1);
        }
    }

    /// Counts a viewer of link `id` until the guard drops.
    pub fn viewer(self: &Arc<Self>, id: &str) -> ViewerGuard {
        if let Some(link) = self.links.lock().unwrap().get_mut(id) {
            link.viewers += 1;
        }
        ViewerGuard {
            shares: Arc::clone(self),
            id: id.to_owned(),
        }
    }

    /// Resolves when link `id` is gone (revoked, or its session ended).
    pub async fn revoked(&self, id: &str) {
        // Subscribe first, then check: a revocation racing the caller is not missed.
        let mut removed = self.removed.subscribe();
        loop {
            if !self.links.lock().unwrap().contains_key(id) {
                return;
            }
            if removed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The links, without the expired ones.
    fn lock_live(&self) -> MutexGuard<'_, HashMap<String, Link>> {
        let mut links = self.links.lock().unwrap();
        let now = now_ms();
        links.retain(|_, l| !l.expired(now));
        links
    }
}

/// A share viewer's socket, counted while it lives.
#[derive(Debug)]
pub struct ViewerGuard {
    shares: Arc<Shares>,
    id: String,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        if let Some(link) = self.shares.links.lock().unwrap().get_mut(&self.id) {
            link.viewers = link.viewers.saturating_sub(1);
        }
    }
}

/// Resolves when the share behind `credential` is revoked (never for any
/// other credential): the terminal socket of a share viewer selects on it.
pub async fn revoked(shares: &Shares, credential: &Credential) -> &'static str {
    match credential {
        Credential::Share { share, .. } => {
            shares.revoked(share).await;
            "share revoked"
        }
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max: usize) -> ShareConfig {
        ShareConfig {
            max_shares_per_session: max,
            share_max_ttl_secs: 3600,
        }
    }

    #[test]
    fn links_are_bounded_listed_and_revoked() {
        let auth = Auth::in_memory("key", Duration::from_secs(60));
        let shares = Shares::in_memory(config(2));
        let ttl = Duration::from_secs(60);
        let (a, secret) = shares.create(&auth, "s1", ttl).unwrap();
        let stored = shares.get(&a.id).unwrap();
        assert!(secret::secret_matches(
            &auth,
            &a.id,
            &secret,
            &stored.verifier
        ));
        shares.create(&auth, "s1", ttl).unwrap();
        assert_eq!(
            shares.create(&auth, "s1", ttl).unwrap_err().status,
            StatusCode::CONFLICT
        );
        shares.create(&auth, "s2", ttl).unwrap();
        assert_eq!(shares.list("s1").len(), 2);
        assert!(!shares.revoke(&auth, "s2", &a.id), "another session's link");
        assert!(shares.revoke(&auth, "s1", &a.id));
        assert!(shares.get(&a.id).is_none());
        shares.forget_session(&auth, "s2");
        assert!(shares.list("s2").is_empty());
        let off = Shares::in_memory(config(0));
        assert_eq!(
            off.create(&auth, "s1", ttl).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn links_survive_a_restart_under_the_same_key_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = || Some(StateDir::open(root.path()).unwrap());
        let salt = [7u8; 16];
        let revoked = || crate::revocations::Revocations::in_memory(10);
        let auth = Auth::new("key-one", Duration::from_secs(60), &salt, revoked());
        let shares = Shares::with_store(config(5), store::Store::new(dir()), &auth);
        let (info, _) = shares
            .create(&auth, "s1", Duration::from_secs(600))
            .unwrap();
        let again = Shares::with_store(config(5), store::Store::new(dir()), &auth);
        assert_eq!(again.list("s1"), vec![info]);
        let rekeyed = Auth::new("key-two", Duration::from_secs(60), &salt, revoked());
        let voided = Shares::with_store(config(5), store::Store::new(dir()), &rekeyed);
        assert!(voided.list("s1").is_empty());
    }
}
