//! Host and Origin checks.
//!
//! Every request must name, in `Host` (and a trusted proxy's
//! `X-Forwarded-Host`), a host the gateway answers to: a loopback name
//! (`localhost`, `*.localhost`), an IP address (the bound address among
//! them), a host of `PUBLIC_HOSTS` or `ALLOWED_ORIGINS`, or the tunnel's
//! public host. Others get 421 before anything else is looked at: a DNS
//! rebinding page controls both `Host` and `Origin` but cannot make its own
//! name one of these.
//!
//! A WebSocket upgrade or a state-changing request that carries an `Origin`
//! header must come from the gateway's own origin (the `Host` it was reached
//! at) or from an origin in `ALLOWED_ORIGINS`. This stops cross-site
//! WebSocket hijacking and cross-site form posts.

use std::net::IpAddr;

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

/// The host name of a `Host` value, lower-cased, without port or trailing
/// dot; IPv6 addresses keep their brackets. `None` when it is not a host.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        format!("[{address}]")
    } else {
        match host.split_once(':') {
            Some((name, port)) if is_port(port) => name.to_string(),
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(&name).to_string();
    let valid = !name.is_empty()
        && name.len() <= 253
        && (name.starts_with('[')
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    valid.then_some(name)
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a normalized host is an IP address or a loopback name: names a
/// rebinding page cannot take.
fn is_address_or_loopback(host: &str) -> bool {
    let address = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    address.parse::<IpAddr>().is_ok() || host == "localhost" || host.ends_with(".localhost")
}

/// The host of a URL such as `https://abc.loca.lt` (the tunnel's).
fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    normalize_host(authority.rsplit('@').next()?)
}

/// The host names the gateway answers to.
#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    names: Vec<String>,
}

impl HostPolicy {
    /// `public_hosts` and the hosts of `allowed_origins` (validated by the configuration).
    pub fn new(public_hosts: &[String], allowed_origins: &[String]) -> Self {
        let names = public_hosts
            .iter()
            .filter_map(|h| normalize_host(h))
            .chain(allowed_origins.iter().filter_map(|o| url_host(o)))
            .collect();
        Self { names }
    }

    /// Whether `host` (a `Host` header) is one the gateway answers to, given
    /// the tunnel's current public URL. A request without a host is refused.
    pub fn allows(&self, host: Option<&str>, public_url: Option<&str>) -> bool {
        let Some(host) = host.and_then(normalize_host) else {
            return false;
        };
        is_address_or_loopback(&host)
            || self.names.contains(&host)
            || public_url.and_then(url_host).is_some_and(|h| h == host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_answered() {
        let p = HostPolicy::new(
            &["Term.Example.com".into()],
            &["https://ui.example.org:8443".into()],
        );
        for host in [
            "127.0.0.1:3000",
            "localhost",
            "LOCALHOST:3000",
            "app.localhost:1",
            "[::1]:3000",
            "10.1.2.3",
            "term.example.com",
            "term.example.com.:443",
            "ui.example.org",
        ] {
            assert!(p.allows(Some(host), None), "{host}");
        }
        for host in [
            "attacker.example:3000",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "term.example.com:abc",
            "a b",
            "",
        ] {
            assert!(!p.allows(Some(host), None), "{host}");
        }
        assert!(!p.allows(None, None));
        assert!(p.allows(Some("abc.loca.lt"), Some("https://abc.loca.lt")));
        assert!(!p.allows(Some("abd.loca.lt"), Some("https://abc.loca.lt")));
    }

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
