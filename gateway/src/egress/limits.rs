//! Concurrent tunnel limits: one permit per open proxy connection in total
//! (`EGRESS_MAX_TUNNELS`), one per tunnel of a session
//! (`EGRESS_MAX_TUNNELS_PER_SESSION`). Permits are released when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The counters behind the limits.
#[derive(Debug)]
pub struct Limits {
    total: Arc<Semaphore>,
    per_session: usize,
    sessions: Arc<Mutex<HashMap<String, usize>>>,
}

/// A connection's place in the total.
#[derive(Debug)]
pub struct ConnectionPermit(#[allow(dead_code)] OwnedSemaphorePermit);

/// A tunnel's place among its session's.
#[derive(Debug)]
pub struct SessionPermit {
    session: String,
    sessions: Arc<Mutex<HashMap<String, usize>>>,
}

impl Limits {
    pub fn new(total: usize, per_session: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_session,
            sessions: Arc::default(),
        }
    }

    /// A place for one more connection, unless `EGRESS_MAX_TUNNELS` are open.
    pub fn connection(&self) -> Option<ConnectionPermit> {
        self.total
            .clone()
            .try_acquire_owned()
            .ok()
            .map(ConnectionPermit)
    }

    /// A place for one more tunnel of `session`, unless it has its limit open.
    pub fn session(&self, session: &str) -> Option<SessionPermit> {
        let mut sessions = crate::sync::lock(&self.sessions);
        let open = sessions.entry(session.to_owned()).or_default();
        if *open >= self.per_session {
            return None;
        }
        *open += 1;
        Some(SessionPermit {
            session: session.to_owned(),
            sessions: self.sessions.clone(),
        })
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut sessions = crate::sync::lock(&self.sessions);
        if let Some(open) = sessions.get_mut(&self.session) {
            *open -= 1;
            if *open == 0 {
                sessions.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_and_released() {
        let limits = Limits::new(2, 1);
        let a = limits.session("a").unwrap();
        assert!(limits.session("a").is_none());
        let _b = limits.session("b").unwrap();
        drop(a);
        assert!(limits.session("a").is_some());
        let one = limits.connection().unwrap();
        let _two = limits.connection().unwrap();
        assert!(limits.connection().is_none());
        drop(one);
        assert!(limits.connection().is_some());
        assert!(limits.sessions.lock().unwrap().len() <= 2);
    }
}
