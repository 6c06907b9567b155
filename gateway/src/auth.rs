//! Authentication: the key check (constant time), login session tokens and
//! their revocation.
//!
//! A login token is `v1.<payload>.<mac>`: a random nonce and an expiry,
//! signed with HMAC-SHA256. The signing secret is derived from `TERMINAL_KEY`
//! once at start with Argon2id ([`KDF_MEMORY_KIB`] KiB, [`KDF_PASSES`]
//! passes) and a random salt kept in the state directory, so that someone
//! holding a stolen cookie pays one Argon2id run per key they try. A token is
//! never the key and the key cannot be recovered from it. Tokens survive a
//! gateway restart (so open pages reconnect without a new login) and die when
//! the key changes, when they expire, or at logout: revocations are kept in
//! the state directory too ([`crate::revocations`]), and every stream
//! opened with a token ends when it does ([`Auth::ended`]).

use std::sync::Mutex;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dispatch_proto::time::now_secs;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::revocations::{Nonce, Revocations};
use crate::state_dir::StateDir;

/// Name of the login cookie.
pub const COOKIE_NAME: &str = "dispatch_session";

/// Argon2id memory cost of the token secret, in KiB (19 MiB).
pub const KDF_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes over that memory.
pub const KDF_PASSES: u32 = 2;
/// Argon2id lanes.
pub const KDF_LANES: u32 = 1;
/// The state-directory file holding the KDF salt (32 hex digits).
pub const SALT_FILE: &str = "login-salt";

type HmacSha256 = Hmac<Sha256>;

/// Who a request is (or was, for a long-lived stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <TERMINAL_KEY>`.
    Bearer,
    /// A login cookie.
    Session { nonce: Nonce, expires: u64 },
    /// A share link's cookie: that one share's read-only view
    /// ([`crate::shares`]), until `expires` (Unix seconds) or its revocation.
    Share { share: String, expires: u64 },
}

/// What a request's credentials came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No credential was presented.
    Absent,
    Accepted(Credential),
    /// A token this key signed, now expired or revoked: not a guess.
    Stale,
    /// A wrong key or a forged token (`"bearer"` or `"cookie"`): a guess,
    /// counted against the client's budget.
    Wrong(&'static str),
}

/// The key, the token signer and the revocation list.
pub struct Auth {
    key_digest: [u8; 32],
    secret: [u8; 32],
    ttl: Duration,
    revoked: Mutex<Revocations>,
    generation: watch::Sender<u64>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The key's signer with this salt and revocation list (runs the KDF).
    pub fn new(key: &str, ttl: Duration, salt: &[u8], revoked: Revocations) -> Self {
        Self {
            key_digest: digest(key.as_bytes()),
            secret: derive_secret(key.as_bytes(), salt),
            ttl,
            revoked: Mutex::new(revoked),
            generation: watch::channel(0).0,
        }
    }

    /// The signer whose salt and revocations live in `dir` (created on first use).
    pub fn open(
        key: &str,
        ttl: Duration,
        dir: StateDir,
        max_revoked: usize,
    ) -> anyhow::Result<Self> {
        let salt = load_salt(&dir)?;
        let revoked = Revocations::load(dir.clone(), max_revoked, now_secs()).map_err(|e| {
            anyhow::anyhow!(
                "ERROR: reading {}: {e}",
                dir.path().join(crate::revocations::FILE).display()
            )
        })?;
        Ok(Self::new(key, ttl, &salt, revoked))
    }

    /// The signer for a configuration: its key (or, when none is given, a
    /// random one printed once on stderr, never logged) and its state
    /// directory. Runs Argon2id once (tens of milliseconds).
    pub fn from_config(config: &crate::Config) -> anyhow::Result<Self> {
        let key = match config.given_key() {
            Some(key) => key.to_owned(),
            None => {
                let key = generate_key();
                eprintln!(
                    "\n  TERMINAL_KEY is not set; the key for this run (shown once): {key}\n"
                );
                key
            }
        };
        let dir = config.state_dir().ok_or_else(|| {
            anyhow::anyhow!("ERROR: set STATE_DIR (HOME is unset, so there is no default)")
        })?;
        let dir = StateDir::open(&dir)?;
        let started = std::time::Instant::now();
        let auth = Self::open(&key, config.session_ttl(), dir, config.max_revoked_tokens)?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "derived the login-token secret"
        );
        Ok(auth)
    }

    /// A signer with a random salt whose revocations live in memory only.
    pub fn in_memory(key: &str, ttl: Duration) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self::new(key, ttl, &salt, Revocations::in_memory(10_000))
    }

    /// Whether `candidate` is the key, compared in constant time.
    pub fn key_matches(&self, candidate: &str) -> bool {
        // Hash the candidate first so the comparison time does not reveal the length.
        self.key_digest.ct_eq(&digest(candidate.as_bytes())).into()
    }

    /// Issues a fresh login token; returns it with its lifetime.
    pub fn issue(&self) -> (String, Duration) {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let expires = now_secs() + self.ttl.as_secs();
        let mut payload = nonce.to_vec();
        payload.extend_from_slice(&expires.to_be_bytes());
        let mac = self.sign(&payload);
        let token = format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(mac)
        );
        (token, self.ttl)
    }

    /// The credential a token stands for, if it is genuine, unexpired and not revoked.
    pub fn verify_token(&self, token: &str) -> Option<Credential> {
        match self.check_token(token) {
            Outcome::Accepted(credential) => Some(credential),
            _ => None,
        }
    }

    fn check_token(&self, token: &str) -> Outcome {
        let Some(credential) = self.genuine(token) else {
            return Outcome::Wrong("cookie");
        };
        if self.still_valid(&credential) {
            Outcome::Accepted(credential)
        } else {
            Outcome::Stale
        }
    }

    /// The credential of a token signed with this key (expired or not).
    fn genuine(&self, token: &str) -> Option<Credential> {
        let rest = token.strip_prefix("v1.")?;
        let (payload, mac) = rest.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if payload.len() != 24 {
            return None;
        }
        let mut verifier = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        verifier.update(&payload);
        verifier.verify_slice(&mac).ok()?;
        let nonce: Nonce = payload[..16].try_into().ok()?;
        let expires = u64::from_be_bytes(payload[16..].try_into().ok()?);
        Some(Credential::Session { nonce, expires })
    }

    /// What a request's `Cookie` and `Authorization` headers come to. A
    /// bearer key, when given, is the credential; else the login cookie.
    pub fn authenticate(&self, cookie: Option<&str>, authorization: Option<&str>) -> Outcome {
        if let Some(bearer) = authorization.and_then(|h| h.strip_prefix("Bearer ")) {
            return match self.key_matches(bearer.trim()) {
                true => Outcome::Accepted(Credential::Bearer),
                false => Outcome::Wrong("bearer"),
            };
        }
        match cookie.and_then(|c| cookie_value(c, COOKIE_NAME)) {
            Some(token) => self.check_token(token),
            None => Outcome::Absent,
        }
    }

    /// Whether a credential accepted earlier still holds (not expired, not
    /// revoked; a share's revocation is [`crate::shares::Shares::revoked`]).
    pub fn still_valid(&self, credential: &Credential) -> bool {
        match credential {
            Credential::Bearer => true,
            Credential::Share { expires, .. } => *expires > now_secs(),
            Credential::Session { nonce, expires } => {
                *expires > now_secs() && !crate::sync::lock(&self.revoked).contains(nonce)
            }
        }
    }

    /// Revokes a login token (kept in the state directory until it would
    /// have expired) and wakes every stream to recheck its credential.
    pub fn revoke(&self, credential: &Credential) {
        if let Credential::Session { nonce, expires } = credential {
            let saved = crate::sync::lock(&self.revoked).insert(*nonce, *expires, now_secs());
            if let Err(err) = saved {
                tracing::error!(%err, "saving a revocation failed: it holds until restart only");
            }
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Changes whenever a credential is revoked.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Resolves when `credential` is revoked or expires (never for a bearer
    /// key), with the reason. Every authenticated stream selects on it.
    pub async fn ended(&self, credential: &Credential) -> &'static str {
        // Subscribe first, then check: a logout racing the caller is not missed.
        let mut revocations = self.revocations();
        let expired = async {
            match self.expires_in(credential) {
                Some(left) => tokio::time::sleep(left).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        loop {
            if !self.still_valid(credential) {
                return "credentials revoked";
            }
            tokio::select! {
                _ = &mut expired => return "credentials expired",
                changed = revocations.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// When a credential expires by itself.
    pub fn expires_in(&self, credential: &Credential) -> Option<Duration> {
        match credential {
            Credential::Bearer => None,
            Credential::Session { expires, .. } | Credential::Share { expires, .. } => {
                Some(Duration::from_secs(expires.saturating_sub(now_secs())))
            }
        }
    }

    /// HMAC-SHA256 of `data` for `purpose` under the key-derived secret: a
    /// value that dies when the key changes (share links' verifiers and
    /// cookies, [`crate::shares`]). Distinct purposes never collide with
    /// each other or with login tokens.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"dispatch mac\0");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn sign(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

/// [`Auth::ended`] for a stream opened with `credential` (never, without one).
pub async fn stream_ended(auth: &Auth, credential: Option<&Credential>) -> &'static str {
    match credential {
        Some(credential) => auth.ended(credential).await,
        None => std::future::pending().await,
    }
}

/// The token-signing secret: Argon2id of the key under `salt`.
pub fn derive_secret(key: &[u8], salt: &[u8]) -> [u8; 32] {
    let params = Params::new(KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES, Some(32))
        .expect("valid Argon2id parameters");
    let mut secret = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(key, salt, &mut secret)
        .expect("a 16-byte salt and a key shorter than 4 GiB");
    secret
}

/// The KDF salt in `dir`, created (16 random bytes) on first use.
fn load_salt(dir: &StateDir) -> anyhow::Result<[u8; 16]> {
    let mut fresh = [0u8; 16];
    rand::rng().fill_bytes(&mut fresh);
    let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.path().join(SALT_FILE);
    let stored = dir
        .create_once(SALT_FILE, hex.as_bytes())
        .map_err(|e| anyhow::anyhow!("ERROR: writing {}: {e}", path.display()))?;
    parse_salt(&stored).ok_or_else(|| {
        anyhow::anyhow!(
            "ERROR: {} is not 32 hex digits; delete it to start with a new salt (every login ends)",
            path.display()
        )
    })
}

fn parse_salt(text: &[u8]) -> Option<[u8; 16]> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut salt = [0u8; 16];
    for (i, byte) in salt.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(salt)
}

/// The `Set-Cookie` value for a new login.
pub fn login_cookie(token: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears the login cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether a request presents a credential at all: a bearer key or a login cookie.
pub fn presents_credential(cookie: Option<&str>, authorization: Option<&str>) -> bool {
    authorization.is_some_and(|h| h.starts_with("Bearer "))
        || cookie.is_some_and(|c| cookie_value(c, COOKIE_NAME).is_some())
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(bytes).into()
}

/// A random login key: 24 URL-safe characters (144 bits).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random secret as hex (for a generated broker token or key).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_revoke() {
        let auth = Auth::in_memory("s3cret", Duration::from_secs(60));
        let (token, _) = auth.issue();
        assert!(!token.contains("s3cret"));
        let cred = auth.verify_token(&token).unwrap();
        assert!(
            Auth::in_memory("other", Duration::from_secs(60))
                .verify_token(&token)
                .is_none()
        );
        let mut forged = token.clone();
        forged.pop();
        assert!(auth.verify_token(&forged).is_none());
        auth.revoke(&cred);
        assert!(auth.verify_token(&token).is_none());
        assert_eq!(auth.check_token(&token), Outcome::Stale);
        assert_eq!(auth.check_token(&forged), Outcome::Wrong("cookie"));
    }

    #[test]
    fn headers_authenticate() {
        let auth = Auth::in_memory("s3cret", Duration::from_secs(60));
        assert_eq!(
            auth.authenticate(None, Some("Bearer s3cret")),
            Outcome::Accepted(Credential::Bearer)
        );
        assert_eq!(
            auth.authenticate(None, Some("Bearer nope")),
            Outcome::Wrong("bearer")
        );
        let (token, _) = auth.issue();
        let cookie = format!("a=b; {COOKIE_NAME}={token}");
        assert!(matches!(
            auth.authenticate(Some(&cookie), None),
            Outcome::Accepted(_)
        ));
        assert_eq!(auth.authenticate(None, None), Outcome::Absent);
        assert_eq!(auth.authenticate(Some("a=b"), None), Outcome::Absent);
    }

    #[test]
    fn the_salt_is_kept_and_checked() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let salt = load_salt(&dir).unwrap();
        assert_eq!(load_salt(&dir).unwrap(), salt);
        dir.replace(SALT_FILE, b"nope").unwrap();
        assert!(load_salt(&dir).is_err());
    }

    #[tokio::test]
    async fn ended_at_revocation() {
        let auth = std::sync::Arc::new(Auth::in_memory("s3cret", Duration::from_secs(60)));
        let (token, _) = auth.issue();
        let cred = auth.verify_token(&token).unwrap();
        let waiter = {
            let (auth, cred) = (auth.clone(), cred.clone());
            tokio::spawn(async move { auth.ended(&cred).await })
        };
        tokio::task::yield_now().await;
        auth.revoke(&cred);
        assert_eq!(waiter.await.unwrap(), "credentials revoked");
    }
}
