//! A share link's identifiers and secrets: the random id and secret, the
//! verifier kept in place of the secret, and the cookie the secret is
//! exchanged for. Verifiers and cookies are MACs under the key-derived
//! secret ([`Auth::mac`]), so a new `TERMINAL_KEY` invalidates every link
//! and every share cookie at once; both are compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::auth::Auth;

/// Random bytes of a share id (96 bits; not a secret: it names the link).
const ID_BYTES: usize = 12;
/// Random bytes of a share secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Name of the share cookie (one per share: its `Path` is the share's).
pub const COOKIE_NAME: &str = "dispatch_share";

/// A new share id: 16 URL-safe characters.
pub fn new_id() -> String {
    random_text(ID_BYTES)
}

/// A new share secret: 43 URL-safe characters.
pub fn new_secret() -> String {
    random_text(SECRET_BYTES)
}

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Whether `id` has the shape of a share id (checked before any lookup).
pub fn valid_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is stored in place of share `id`'s secret.
pub fn verifier(auth: &Auth, id: &str, secret: &str) -> [u8; 32] {
    auth.mac("share secret", format!("{id}.{secret}").as_bytes())
}

/// Whether `secret` is share `id`'s, given its stored verifier.
pub fn secret_matches(auth: &Auth, id: &str, secret: &str, stored: &[u8; 32]) -> bool {
    verifier(auth, id, secret).ct_eq(stored).into()
}

/// The share cookie's value for share `id`.
pub fn cookie_value(auth: &Auth, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(auth.mac("share cookie", id.as_bytes()))
}

/// Whether `presented` is share `id`'s cookie under the current key.
pub fn cookie_matches(auth: &Auth, id: &str, presented: &str) -> bool {
    cookie_value(auth, id)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

/// The path every route of share `id`'s viewer lies under (and its cookie's `Path`).
pub fn share_path(id: &str) -> String {
    format!("/api/shares/{id}")
}

/// The `Set-Cookie` value for a viewer of share `id`, good for `max_age_secs`.
pub fn set_cookie(value: &str, id: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path={}; Max-Age={max_age_secs}{}",
        share_path(id),
        if secure { "; Secure" } else { "" }
    )
}

/// Lowercase hex of a verifier (the store's form).
pub fn to_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A verifier from its hex form.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn secrets_and_cookies_die_with_the_key() {
        let auth = Auth::in_memory("key-one", Duration::from_secs(60));
        let other = Auth::in_memory("key-two", Duration::from_secs(60));
        let (id, secret) = (new_id(), new_secret());
        assert!(valid_id(&id), "{id}");
        assert_eq!(secret.len(), 43);
        let stored = verifier(&auth, &id, &secret);
        assert!(secret_matches(&auth, &id, &secret, &stored));
        assert!(!secret_matches(&auth, &id, "nope", &stored));
        assert!(!secret_matches(&other, &id, &secret, &stored));
        let cookie = cookie_value(&auth, &id);
        assert!(cookie_matches(&auth, &id, &cookie));
        assert!(!cookie_matches(&other, &id, &cookie));
        assert!(!cookie_matches(&auth, &new_id(), &cookie));
        assert_eq!(from_hex(&to_hex(&stored)), Some(stored));
        assert!(!valid_id("../../etc/passwd"));
    }
}
