//! The per-session egress proxy credentials, derived the same way by the
//! broker (which puts them in a session's proxy variables) and the gateway
//! (which checks them on `CONNECT`), so neither keeps any shared state.
//!
//! `K = HMAC-SHA256(key = BROKER_TOKEN, msg = "dispatch egress v1")`; a
//! session's secret is `base64url-no-pad(HMAC-SHA256(K, session_id))`. The
//! session sees its own secret only; the broker token cannot be recovered
//! from it, and no session can compute another's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The context string the egress key is derived under.
pub const KEY_CONTEXT: &[u8] = b"dispatch egress v1";

/// The key under which session secrets are computed (never printed).
#[derive(Clone)]
pub struct EgressKey([u8; 32]);

impl std::fmt::Debug for EgressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressKey(<redacted>)")
    }
}

impl EgressKey {
    /// Derives the key from the broker token.
    pub fn derive(broker_token: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(broker_token.as_bytes()).expect("any key length");
        mac.update(KEY_CONTEXT);
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, session_id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("any key length");
        mac.update(session_id.as_bytes());
        mac
    }

    /// The proxy password of session `session_id`.
    pub fn secret(&self, session_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(session_id).finalize().into_bytes())
    }

    /// Whether `secret` is the password of `session_id` (constant time).
    pub fn verify(&self, session_id: &str, secret: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(secret) {
            Ok(tag) => self.mac(session_id).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_only_for_their_session_and_token() {
        let key = EgressKey::derive("token-a");
        let secret = key.secret("s1");
        assert_eq!(secret.len(), 43, "32 bytes, base64url without padding");
        assert!(key.verify("s1", &secret));
        assert!(!key.verify("s2", &secret));
        assert!(!EgressKey::derive("token-b").verify("s1", &secret));
        assert!(!key.verify("s1", &secret[..42]));
        assert!(!key.verify("s1", "not base64 !"));
        assert!(!key.verify("s1", ""));
    }

    #[test]
    fn derivation_is_the_documented_one() {
        // K = HMAC(token, context); secret = b64url(HMAC(K, id)).
        let mut k = HmacSha256::new_from_slice(b"t").unwrap();
        k.update(KEY_CONTEXT);
        let k = k.finalize().into_bytes();
        let mut s = HmacSha256::new_from_slice(&k).unwrap();
        s.update(b"id");
        let expected = URL_SAFE_NO_PAD.encode(s.finalize().into_bytes());
        assert_eq!(EgressKey::derive("t").secret("id"), expected);
        assert!(!format!("{:?}", EgressKey::derive("t")).contains('='));
    }
}
