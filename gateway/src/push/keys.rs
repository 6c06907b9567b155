//! The gateway's VAPID key pair (RFC 8292): a P-256 key generated once and
//! kept in the state directory (file `push-vapid-key`, mode 0600, the
//! private scalar in base64url), and the ES256 JWT that identifies the
//! gateway to a push service.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::state_dir::StateDir;

/// The key's file in the state directory.
pub const FILE: &str = "push-vapid-key";

/// How long a signed JWT is valid (RFC 8292 allows at most 24 hours).
const JWT_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The VAPID key pair.
pub struct VapidKey {
    signing: SigningKey,
    /// The public key, uncompressed SEC1 in base64url: the browser's
    /// `applicationServerKey` and the `k=` of the `Authorization` header.
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// The key kept in `dir`, generated and written there on first use.
    pub fn load_or_create(dir: &StateDir) -> anyhow::Result<Self> {
        let path = dir.path().join(FILE);
        let text = match dir.read(FILE)? {
            Some(text) => text,
            None => dir.create_once(FILE, URL_SAFE_NO_PAD.encode(random_scalar()).as_bytes())?,
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(String::from_utf8_lossy(&text).trim())
            .ok()
            .and_then(|bytes| p256::SecretKey::from_slice(&bytes).ok())
            .with_context(|| {
                format!(
                    "ERROR: {} does not hold a P-256 private key (remove it to make a new one; subscribed browsers must then subscribe again)",
                    path.display()
                )
            })?;
        Ok(Self::from_secret(&bytes))
    }

    fn from_secret(secret: &p256::SecretKey) -> Self {
        let point = secret.public_key().to_encoded_point(false);
        Self {
            signing: SigningKey::from(secret),
            public: URL_SAFE_NO_PAD.encode(point.as_bytes()),
        }
    }

    /// The public key (uncompressed, base64url).
    pub fn public(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a push to a service at `audience`
    /// (the endpoint's origin), naming `contact` as the subject.
    pub fn authorization(&self, audience: &str, contact: &str) -> String {
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(JWT_LIFETIME)
            .as_secs();
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({"aud": audience, "exp": expires, "sub": contact});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        format!("vapid t={signed}.{signature}, k={}", self.public)
    }
}

/// 32 random bytes that make a valid P-256 scalar.
fn random_scalar() -> [u8; 32] {
    loop {
        let bytes: [u8; 32] = rand::random();
        if p256::SecretKey::from_slice(&bytes).is_ok() {
            return bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn kept_once_and_signs_verifiable_tokens() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let key = VapidKey::load_or_create(&dir).unwrap();
        let again = VapidKey::load_or_create(&dir).unwrap();
        assert_eq!(key.public(), again.public());
        let header = key.authorization("https://push.example", "mailto:a@example.com");
        let token = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split(", k=").next())
            .unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let public = URL_SAFE_NO_PAD.decode(key.public()).unwrap();
        let verifying = VerifyingKey::from_sec1_bytes(&public).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        verifying.verify(signed.as_bytes(), &signature).unwrap();
        std::fs::write(root.path().join(FILE), "not a key").unwrap();
        let refused = VapidKey::load_or_create(&dir).unwrap_err().to_string();
        assert!(refused.contains("P-256"), "{refused}");
    }
}
