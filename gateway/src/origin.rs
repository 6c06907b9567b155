//! Origin checks: a WebSocket upgrade or a state-changing request that carries
//! an `Origin` header must come from the gateway's own origin (the `Host` it
//! was reached at) or from an origin in `ALLOWED_ORIGINS`. This stops
//! cross-site WebSocket hijacking and cross-site form posts.

/// Lower-cases an origin and drops the scheme's default port:
/// `HTTPS://Example.com:443` becomes `https://example.com`. `None` when it is
/// not an origin (`null`, a path, an unknown scheme).
pub fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains('/') {
        return None;
    }
    Some(format!(
        "{scheme}://{}",
        strip_default_port(scheme, authority)
    ))
}

fn strip_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// The allowlist and the rule for the gateway's own origin.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// `allowed`: extra origins (already validated by the configuration).
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().filter_map(|o| normalize_origin(o)).collect(),
        }
    }

    /// Whether a request with this `Origin` reached at `host` (the `Host`
    /// header, or a trusted proxy's `X-Forwarded-Host`) may proceed. Requests
    /// without an `Origin` (scripts, curl) pass: browsers always send one on
    /// WebSocket upgrades and cross-site posts.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let Some(origin) = normalize_origin(origin) else {
            return false;
        };
        if self.allowed.contains(&origin) {
            return true;
        }
        let Some(host) = host else { return false };
        let host = host.trim().to_ascii_lowercase();
        let (scheme, authority) = origin.split_once("://").unwrap_or_default();
        strip_default_port(scheme, &host) == authority
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origin_allowed_others_refused() {
        let p = OriginPolicy::new(&["https://term.example.com".into()]);
        assert!(p.allows(None, Some("127.0.0.1:3000")));
        assert!(p.allows(Some("http://127.0.0.1:3000"), Some("127.0.0.1:3000")));
        assert!(p.allows(Some("https://example.org"), Some("example.org")));
        assert!(p.allows(Some("https://example.org"), Some("example.org:443")));
        assert!(p.allows(Some("https://term.example.com:443"), Some("internal:3000")));
        assert!(!p.allows(Some("http://127.0.0.1:3001"), Some("127.0.0.1:3000")));
        assert!(!p.allows(Some("http://evil.example"), Some("127.0.0.1:3000")));
        assert!(!p.allows(Some("null"), Some("127.0.0.1:3000")));
        assert!(!p.allows(Some("http://127.0.0.1:3000"), None));
    }
}
