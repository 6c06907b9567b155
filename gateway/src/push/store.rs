//! The push subscriptions: endpoint and keys of each browser that subscribed,
//! at most `PUSH_MAX_SUBSCRIPTIONS`, kept in the state directory (file
//! `push-subscriptions.json`, replaced whole on every change) so they outlive
//! a restart. A subscription with an endpoint already stored replaces it.

use std::io;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::state_dir::StateDir;

/// The file in the state directory.
pub const FILE: &str = "push-subscriptions.json";

/// One browser's subscription, checked (see [`super::Subscription::check`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub endpoint: String,
    /// The browser's P-256 public key (uncompressed, base64url).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret (base64url).
    pub auth: String,
    /// When it was stored, in Unix milliseconds.
    pub created_ms: u64,
}

/// What storing a subscription did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    New,
    Replaced,
    /// The store holds `max` subscriptions already.
    Full {
        max: usize,
    },
}

/// The subscriptions, in memory and in the state directory.
#[derive(Debug)]
pub struct Store {
    list: Mutex<Vec<Stored>>,
    max: usize,
    dir: StateDir,
}

impl Store {
    /// The subscriptions kept in `dir` (none when the file does not exist).
    pub fn load(dir: StateDir, max: usize) -> io::Result<Self> {
        let list = match dir.read(FILE)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            None => Vec::new(),
        };
        Ok(Self {
            list: Mutex::new(list),
            max,
            dir,
        })
    }

    /// A copy of every subscription.
    pub fn all(&self) -> Vec<Stored> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Stores `subscription` (replacing one with its endpoint) unless full.
    pub fn add(&self, subscription: Stored) -> io::Result<Added> {
        let mut list = self.lock();
        let added = match list
            .iter()
            .position(|s| s.endpoint == subscription.endpoint)
        {
            Some(index) => {
                list[index] = subscription;
                Added::Replaced
            }
            None if list.len() >= self.max => return Ok(Added::Full { max: self.max }),
            None => {
                list.push(subscription);
                Added::New
            }
        };
        self.save(&list)?;
        Ok(added)
    }

    /// Removes the subscription of `endpoint`; whether there was one.
    pub fn remove(&self, endpoint: &str) -> io::Result<bool> {
        let mut list = self.lock();
        let before = list.len();
        list.retain(|s| s.endpoint != endpoint);
        if list.len() == before {
            return Ok(false);
        }
        self.save(&list)?;
        Ok(true)
    }

    fn save(&self, list: &[Stored]) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(list).map_err(io::Error::other)?;
        self.dir.replace(FILE, &bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Stored>> {
        crate::sync::lock(&self.list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(endpoint: &str) -> Stored {
        Stored {
            endpoint: endpoint.into(),
            p256dh: "key".into(),
            auth: "auth".into(),
            created_ms: 1,
        }
    }

    #[test]
    fn bounded_kept_and_replaced_by_endpoint() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let store = Store::load(dir.clone(), 2).unwrap();
        assert_eq!(store.add(stored("https://a/1")).unwrap(), Added::New);
        assert_eq!(store.add(stored("https://a/1")).unwrap(), Added::Replaced);
        assert_eq!(store.add(stored("https://a/2")).unwrap(), Added::New);
        assert_eq!(
            store.add(stored("https://a/3")).unwrap(),
            Added::Full { max: 2 }
        );
        let again = Store::load(dir.clone(), 2).unwrap();
        assert_eq!(again.all(), store.all());
        assert!(again.remove("https://a/1").unwrap());
        assert!(!again.remove("https://a/1").unwrap());
        assert_eq!(Store::load(dir, 2).unwrap().len(), 1);
    }
}
