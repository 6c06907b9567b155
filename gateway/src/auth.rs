//! Authentication: the key check (constant time), login session tokens and
//! their revocation.
//!
//! A login token is `v1.<payload>.<mac>`: a random nonce and an expiry,
//! signed with HMAC-SHA256 under a secret derived from `TERMINAL_KEY`. It is
//! never the key and the key cannot be recovered from it. Tokens survive a
//! gateway restart (so open pages reconnect without a new login) and die when
//! the key changes or they expire. Logout revokes a token in this gateway
//! process; the revocation list holds only unexpired tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::watch;

/// Name of the login cookie.
pub const COOKIE_NAME: &str = "dispatch_session";

type HmacSha256 = Hmac<Sha256>;

/// Who a request is (or was, for a long-lived WebSocket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <TERMINAL_KEY>`.
    Bearer,
    /// A login cookie.
    Session { nonce: [u8; 16], expires: u64 },
}

/// The key, the token signer and the revocation list.
pub struct Auth {
    key: Vec<u8>,
    secret: [u8; 32],
    ttl: Duration,
    revoked: Mutex<HashMap<[u8; 16], u64>>,
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
    pub fn new(key: &str, ttl: Duration) -> Self {
        let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(b"dispatch-gateway login token v1");
        Self {
            key: key.as_bytes().to_vec(),
            secret: mac.finalize().into_bytes().into(),
            ttl,
            revoked: Mutex::new(HashMap::new()),
            generation: watch::channel(0).0,
        }
    }

    /// Whether `candidate` is the key, compared in constant time.
    pub fn key_matches(&self, candidate: &str) -> bool {
        // Hash both sides first so the comparison time does not reveal the length.
        digest(&self.key)
            .ct_eq(&digest(candidate.as_bytes()))
            .into()
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
        let nonce: [u8; 16] = payload[..16].try_into().ok()?;
        let expires = u64::from_be_bytes(payload[16..].try_into().ok()?);
        let credential = Credential::Session { nonce, expires };
        self.still_valid(&credential).then_some(credential)
    }

    /// The credential carried by a request's `Cookie` or `Authorization` header.
    pub fn authenticate(
        &self,
        cookie: Option<&str>,
        authorization: Option<&str>,
    ) -> Option<Credential> {
        if let Some(bearer) = authorization.and_then(|h| h.strip_prefix("Bearer ")) {
            return self
                .key_matches(bearer.trim())
                .then_some(Credential::Bearer);
        }
        cookie_value(cookie?, COOKIE_NAME).and_then(|token| self.verify_token(token))
    }

    /// Whether a credential accepted earlier still holds (not expired, not revoked).
    pub fn still_valid(&self, credential: &Credential) -> bool {
        match credential {
            Credential::Bearer => true,
            Credential::Session { nonce, expires } => {
                *expires > now_secs() && !self.revoked.lock().unwrap().contains_key(nonce)
            }
        }
    }

    /// Revokes a login token and wakes every WebSocket to recheck its credential.
    pub fn revoke(&self, credential: &Credential) {
        if let Credential::Session { nonce, expires } = credential {
            let now = now_secs();
            let mut revoked = self.revoked.lock().unwrap();
            revoked.retain(|_, exp| *exp > now);
            revoked.insert(*nonce, *expires);
            drop(revoked);
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Changes whenever a credential is revoked.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// When a credential expires by itself.
    pub fn expires_in(&self, credential: &Credential) -> Option<Duration> {
        match credential {
            Credential::Bearer => None,
            Credential::Session { expires, .. } => {
                Some(Duration::from_secs(expires.saturating_sub(now_secs())))
            }
        }
    }

    fn sign(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
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
        let auth = Auth::new("s3cret", Duration::from_secs(60));
        let (token, _) = auth.issue();
        assert!(!token.contains("s3cret"));
        let cred = auth.verify_token(&token).unwrap();
        assert!(
            Auth::new("other", Duration::from_secs(60))
                .verify_token(&token)
                .is_none()
        );
        let mut forged = token.clone();
        forged.pop();
        assert!(auth.verify_token(&forged).is_none());
        auth.revoke(&cred);
        assert!(auth.verify_token(&token).is_none());
    }

    #[test]
    fn headers_authenticate() {
        let auth = Auth::new("s3cret", Duration::from_secs(60));
        assert_eq!(
            auth.authenticate(None, Some("Bearer s3cret")),
            Some(Credential::Bearer)
        );
        assert_eq!(auth.authenticate(None, Some("Bearer nope")), None);
        let (token, _) = auth.issue();
        let cookie = format!("a=b; {COOKIE_NAME}={token}");
        assert!(auth.authenticate(Some(&cookie), None).is_some());
        assert!(auth.authenticate(None, None).is_none());
    }
}
