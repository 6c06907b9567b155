//! Logout revocations: the nonces of login tokens revoked before their
//! expiry. The list is bounded (`MAX_REVOKED_TOKENS`), forgets each entry when
//! its token would have expired anyway, and is kept in the state directory
//! (file `revoked-tokens`, one `<nonce hex> <expiry>` line per token) so that
//! a logout survives a restart.

use std::collections::HashMap;
use std::io;

use crate::state_dir::StateDir;

/// The file in the state directory.
pub const FILE: &str = "revoked-tokens";

const HEADER: &str = "# dispatch-gateway revoked login tokens: <nonce> <expiry, unix seconds>";

/// A token's nonce.
pub type Nonce = [u8; 16];

/// The revoked tokens that have not expired yet.
#[derive(Debug)]
pub struct Revocations {
    entries: HashMap<Nonce, u64>,
    max: usize,
    dir: Option<StateDir>,
}

impl Revocations {
    /// An empty list kept in memory only.
    pub fn in_memory(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max: max.max(1),
            dir: None,
        }
    }

    /// The list saved in `dir`, without the entries expired by `now`.
    pub fn load(dir: StateDir, max: usize, now: u64) -> io::Result<Self> {
        let mut list = Self::in_memory(max);
        if let Some(bytes) = dir.read(FILE)? {
            let text = String::from_utf8_lossy(&bytes);
            let mut unreadable = 0usize;
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                match parse_line(line) {
                    Some((nonce, expires)) if expires > now => {
                        list.entries.insert(nonce, expires);
                    }
                    Some(_) => {}
                    None => unreadable += 1,
                }
            }
            if unreadable > 0 {
                tracing::warn!(
                    unreadable,
                    file = FILE,
                    "skipped unreadable revocation lines"
                );
            }
            list.evict_to(list.max);
        }
        list.dir = Some(dir);
        Ok(list)
    }

    /// How many tokens are revoked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, nonce: &Nonce) -> bool {
        self.entries.contains_key(nonce)
    }

    /// Revokes a token until `expires`, forgets expired entries, and saves
    /// the list. When the list is full, the entry closest to its own expiry
    /// makes room (with a warning).
    pub fn insert(&mut self, nonce: Nonce, expires: u64, now: u64) -> io::Result<()> {
        self.entries.retain(|_, exp| *exp > now);
        if !self.entries.contains_key(&nonce) && self.entries.len() >= self.max {
            tracing::warn!(
                max = self.max,
                "MAX_REVOKED_TOKENS reached: forgetting the revocation closest to expiry"
            );
            self.evict_to(self.max - 1);
        }
        self.entries.insert(nonce, expires);
        self.save()
    }

    fn evict_to(&mut self, size: usize) {
        if self.entries.len() <= size {
            return;
        }
        let mut by_expiry: Vec<(Nonce, u64)> = self.entries.iter().map(|(n, e)| (*n, *e)).collect();
        by_expiry.sort_unstable_by_key(|(_, expires)| *expires);
        let excess = self.entries.len() - size;
        for (nonce, _) in by_expiry.into_iter().take(excess) {
            self.entries.remove(&nonce);
        }
    }

    fn save(&self) -> io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut text = String::with_capacity(HEADER.len() + 1 + self.entries.len() * 45);
        text.push_str(HEADER);
        text.push('\n');
        for (nonce, expires) in &self.entries {
            text.push_str(&hex(nonce));
            text.push(' ');
            text.push_str(&expires.to_string());
            text.push('\n');
        }
        dir.replace(FILE, text.as_bytes())
    }
}

fn parse_line(line: &str) -> Option<(Nonce, u64)> {
    let (nonce, expires) = line.trim().split_once(' ')?;
    Some((unhex(nonce)?, expires.trim().parse().ok()?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Nonce> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut nonce = [0u8; 16];
    for (i, byte) in nonce.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_bounded_and_expiring() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let mut list = Revocations::load(dir.clone(), 2, 100).unwrap();
        list.insert([1; 16], 150, 100).unwrap();
        list.insert([2; 16], 300, 100).unwrap();
        list.insert([3; 16], 200, 100).unwrap();
        assert_eq!(list.len(), 2, "bounded");
        assert!(
            !list.contains(&[1; 16]),
            "the one closest to expiry made room"
        );
        let reloaded = Revocations::load(dir.clone(), 10, 100).unwrap();
        assert!(reloaded.contains(&[2; 16]) && reloaded.contains(&[3; 16]));
        let later = Revocations::load(dir, 10, 250).unwrap();
        assert!(
            later.contains(&[2; 16]) && !later.contains(&[3; 16]),
            "expired entries go"
        );
    }
}
