//! Where share links are kept across restarts: file `share-links` in the
//! state directory, JSON, rewritten atomically on every change. The file
//! holds verifiers, never secrets, and a check value under the current key:
//! when the key changed, the links it holds are dropped at load (they could
//! not be opened anyway).

use serde::{Deserialize, Serialize};

use super::Link;
use super::secret::{from_hex, to_hex};
use crate::auth::Auth;
use crate::state_dir::StateDir;

/// The file in the state directory.
pub const FILE: &str = "share-links";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    /// [`key_check`] of the key the links were made under.
    key_check: String,
    links: Vec<SavedLink>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedLink {
    id: String,
    session_id: String,
    verifier: String,
    created_at_ms: i64,
    expires_at_ms: i64,
}

/// The links' file, or nothing (in-memory gateways).
#[derive(Debug)]
pub struct Store {
    dir: Option<StateDir>,
}

impl Store {
    pub fn new(dir: Option<StateDir>) -> Self {
        Self { dir }
    }

    /// The saved links made under `auth`'s key (none when there is no file,
    /// or the key changed).
    pub fn load(&self, auth: &Auth) -> anyhow::Result<Vec<Link>> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let Some(bytes) = dir.read(FILE)? else {
            return Ok(Vec::new());
        };
        let saved: Saved = serde_json::from_slice(&bytes)?;
        if saved.key_check != key_check(auth) {
            tracing::info!(
                links = saved.links.len(),
                "TERMINAL_KEY changed: the saved share links are void"
            );
            return Ok(Vec::new());
        }
        Ok(saved.links.into_iter().filter_map(link).collect())
    }

    /// Replaces the file with `links`.
    pub fn save<'a>(&self, auth: &Auth, links: impl Iterator<Item = &'a Link>) {
        let Some(dir) = &self.dir else {
            return;
        };
        let saved = Saved {
            key_check: key_check(auth),
            links: links
                .map(|l| SavedLink {
                    id: l.id.clone(),
                    session_id: l.session_id.clone(),
                    verifier: to_hex(&l.verifier),
                    created_at_ms: l.created_at_ms,
                    expires_at_ms: l.expires_at_ms,
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&saved).expect("plain data");
        if let Err(err) = dir.replace(FILE, &bytes) {
            tracing::error!(%err, "saving the share links failed: changes hold until restart only");
        }
    }
}

fn link(saved: SavedLink) -> Option<Link> {
    Some(Link {
        verifier: from_hex(&saved.verifier)?,
        id: saved.id,
        session_id: saved.session_id,
        created_at_ms: saved.created_at_ms,
        expires_at_ms: saved.expires_at_ms,
        viewers: 0,
    })
}

/// A value that differs for every key (not the key, not a verifier).
fn key_check(auth: &Auth) -> String {
    to_hex(&auth.mac("share links file", b""))
}
