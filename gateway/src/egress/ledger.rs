//! Per session, the hosts its tunnels reached and the ones it was refused
//! (count, bytes each way, last time), kept in memory for
//! `GET /api/sessions/{id}/egress`. Bounded: [`MAX_HOSTS`] entries per
//! session and [`MAX_SESSIONS`] sessions, the least recently used dropped.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use dispatch_proto::time::now_ms;

use super::relay::Traffic;
use crate::protocol::egress::{EgressDecision, EgressHost};

/// Host entries kept per session.
pub const MAX_HOSTS: usize = 256;
/// Sessions kept.
pub const MAX_SESSIONS: usize = 1024;

/// An entry's key: a host, a port and whether it was allowed.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct HostKey {
    host: String,
    port: u16,
    allowed: bool,
}

#[derive(Debug, Default)]
struct Entry {
    reason: Option<&'static str>,
    count: u64,
    /// Bytes of the closed tunnels.
    bytes_up: u64,
    bytes_down: u64,
    /// The open tunnels' counters, read when the view is asked for.
    open: Vec<Arc<Traffic>>,
    last_at: i64,
}

impl Entry {
    fn bytes(&self) -> (u64, u64) {
        self.open
            .iter()
            .fold((self.bytes_up, self.bytes_down), |(up, down), t| {
                (
                    up + t.up.load(Ordering::Relaxed),
                    down + t.down.load(Ordering::Relaxed),
                )
            })
    }
}

#[derive(Debug, Default)]
struct SessionHosts {
    hosts: HashMap<HostKey, Entry>,
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, SessionHosts>,
    clock: u64,
}

/// Every session's egress, in memory.
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    /// Counts one refused connection of `session` to `host:port`.
    pub fn refused(&self, session: &str, host: &str, port: u16, reason: &'static str) {
        self.with_entry(session, host, port, false, |entry| {
            entry.count += 1;
            entry.reason = Some(reason);
        });
    }

    /// Counts one tunnel opened; its bytes count as they pass.
    pub fn opened(&self, session: &str, host: &str, port: u16, traffic: &Arc<Traffic>) {
        self.with_entry(session, host, port, true, |entry| {
            entry.count += 1;
            entry.open.push(traffic.clone());
        });
    }

    /// Keeps a closed tunnel's bytes.
    pub fn closed(&self, session: &str, host: &str, port: u16, traffic: &Arc<Traffic>) {
        self.with_entry(session, host, port, true, |entry| {
            entry.open.retain(|open| !Arc::ptr_eq(open, traffic));
            entry.bytes_up += traffic.up.load(Ordering::Relaxed);
            entry.bytes_down += traffic.down.load(Ordering::Relaxed);
        });
    }

    /// A session's hosts, the most recent first.
    pub fn view(&self, session: &str) -> Vec<EgressHost> {
        let inner = crate::sync::lock(&self.inner);
        let Some(hosts) = inner.sessions.get(session) else {
            return Vec::new();
        };
        let mut view: Vec<EgressHost> = hosts
            .hosts
            .iter()
            .map(|(key, entry)| {
                let (bytes_up, bytes_down) = entry.bytes();
                EgressHost {
                    host: key.host.clone(),
                    port: key.port,
                    decision: if key.allowed {
                        EgressDecision::Allowed
                    } else {
                        EgressDecision::Refused
                    },
                    reason: entry.reason.map(str::to_owned),
                    count: entry.count,
                    bytes_up,
                    bytes_down,
                    last_at: entry.last_at,
                }
            })
            .collect();
        view.sort_by(|a, b| b.last_at.cmp(&a.last_at).then(a.host.cmp(&b.host)));
        view
    }

    /// Drops a session (the broker no longer knows it).
    pub fn forget(&self, session: &str) {
        crate::sync::lock(&self.inner).sessions.remove(session);
    }

    fn with_entry(
        &self,
        session: &str,
        host: &str,
        port: u16,
        allowed: bool,
        update: impl FnOnce(&mut Entry),
    ) {
        let mut inner = crate::sync::lock(&self.inner);
        inner.clock += 1;
        let clock = inner.clock;
        if !inner.sessions.contains_key(session) && inner.sessions.len() >= MAX_SESSIONS {
            evict_session(&mut inner.sessions);
        }
        let hosts = inner.sessions.entry(session.to_owned()).or_default();
        hosts.used = clock;
        let key = HostKey {
            host: host.to_owned(),
            port,
            allowed,
        };
        if !hosts.hosts.contains_key(&key) && hosts.hosts.len() >= MAX_HOSTS {
            evict_host(&mut hosts.hosts);
        }
        let entry = hosts.hosts.entry(key).or_default();
        entry.last_at = now_ms();
        update(entry);
    }
}

fn evict_session(sessions: &mut HashMap<String, SessionHosts>) {
    if let Some(oldest) = sessions
        .iter()
        .min_by_key(|(_, s)| s.used)
        .map(|(id, _)| id.clone())
    {
        sessions.remove(&oldest);
    }
}

fn evict_host(hosts: &mut HashMap<HostKey, Entry>) {
    if let Some(oldest) = hosts
        .iter()
        .min_by_key(|(_, e)| e.last_at)
        .map(|(key, _)| key.clone())
    {
        hosts.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_refusals_per_host() {
        let ledger = Ledger::default();
        let (first, second) = (Arc::new(Traffic::default()), Arc::new(Traffic::default()));
        ledger.opened("s", "api.anthropic.com", 443, &first);
        ledger.opened("s", "api.anthropic.com", 443, &second);
        first.up.fetch_add(10, Ordering::Relaxed);
        second.down.fetch_add(20, Ordering::Relaxed);
        let bytes = |ledger: &Ledger| {
            let view = ledger.view("s");
            let api = view
                .iter()
                .find(|h| h.decision == EgressDecision::Allowed)
                .unwrap();
            (api.count, api.bytes_up, api.bytes_down)
        };
        assert_eq!(bytes(&ledger), (2, 10, 20), "open tunnels count as they go");
        ledger.closed("s", "api.anthropic.com", 443, &first);
        first.up.fetch_add(5, Ordering::Relaxed);
        assert_eq!(
            bytes(&ledger),
            (2, 10, 20),
            "a closed tunnel's bytes are kept once"
        );
        ledger.refused("s", "evil.example", 443, "not in allowlist");
        let view = ledger.view("s");
        assert_eq!(view.len(), 2);
        let api = view
            .iter()
            .find(|h| h.decision == EgressDecision::Allowed)
            .unwrap();
        assert_eq!(api.reason, None);
        let evil = view
            .iter()
            .find(|h| h.decision == EgressDecision::Refused)
            .unwrap();
        assert_eq!(evil.reason.as_deref(), Some("not in allowlist"));
        assert!(ledger.view("other").is_empty());
        let json = serde_json::to_value(&view[0]).unwrap();
        assert!(json.get("bytesUp").is_some() && json.get("lastAt").is_some());
        ledger.forget("s");
        assert!(ledger.view("s").is_empty());
    }

    #[test]
    fn is_bounded() {
        let ledger = Ledger::default();
        for i in 0..MAX_HOSTS + 10 {
            ledger.refused("s", &format!("h{i}.example"), 443, "not in allowlist");
        }
        assert_eq!(ledger.view("s").len(), MAX_HOSTS);
        for i in 0..MAX_SESSIONS + 5 {
            ledger.refused(&format!("s{i}"), "h.example", 443, "not in allowlist");
        }
        let inner = ledger.inner.lock().unwrap();
        assert_eq!(inner.sessions.len(), MAX_SESSIONS);
        assert!(
            !inner.sessions.contains_key("s"),
            "the least recently used went first"
        );
    }
}
