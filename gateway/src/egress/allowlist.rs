//! Which targets the egress proxy may reach: host patterns (exact names,
//! literal addresses and `*.suffix` wildcards) and ports, and the syntax of
//! a `CONNECT` target.

use std::net::IpAddr;

/// A `CONNECT` target, normalised: lower-case name without a trailing dot,
/// or a literal address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The name, or the address in its canonical text form (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Set when the target is a literal address.
    pub ip: Option<IpAddr>,
}

impl Target {
    /// Parses an authority-form target (`host:port`, `[v6]:port`).
    pub fn parse(authority: &str) -> Option<Self> {
        let (host, port) = match authority.strip_prefix('[') {
            Some(rest) => {
                let (v6, port) = rest.split_once("]:")?;
                (v6, port)
            }
            None => authority.rsplit_once(':')?,
        };
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        let host = normalize_host(host)?;
        let ip = host.parse::<IpAddr>().ok();
        if authority.starts_with('[') != matches!(ip, Some(IpAddr::V6(_))) {
            return None;
        }
        Some(Self { host, port, ip })
    }
}

/// A host in canonical form: an address's canonical text, or a valid DNS
/// name in lower case without the trailing dot.
fn normalize_host(host: &str) -> Option<String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    is_dns_name(&name).then_some(name)
}

fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// How a host matched the allowlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// Named exactly: it may resolve to any address, private ones included.
    Exact,
    /// Matched a `*.suffix` pattern: only public addresses.
    Wildcard,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// `.suffix`: any name strictly below `suffix`.
    Below(String),
}

/// The host patterns of `EGRESS_ALLOW`.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    patterns: Vec<Pattern>,
}

impl Allowlist {
    /// Parses the entries; empty entries are skipped.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let bad = || {
                format!("EGRESS_ALLOW entry {entry:?} is not a host name, an address or *.suffix")
            };
            let pattern = match entry.strip_prefix("*.") {
                Some(suffix) => {
                    let suffix = normalize_host(suffix).filter(|s| s.parse::<IpAddr>().is_err());
                    Pattern::Below(format!(".{}", suffix.ok_or_else(bad)?))
                }
                None => {
                    let host = entry
                        .strip_prefix('[')
                        .and_then(|e| e.strip_suffix(']'))
                        .unwrap_or(entry);
                    Pattern::Exact(normalize_host(host).ok_or_else(bad)?)
                }
            };
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }

    /// How `target` is allowed, if it is.
    pub fn matches(&self, target: &Target) -> Option<Match> {
        let host = target.host.as_str();
        if self.patterns.contains(&Pattern::Exact(host.to_owned())) {
            return Some(Match::Exact);
        }
        let below = |suffix: &String| target.ip.is_none() && host.ends_with(suffix.as_str());
        self.patterns
            .iter()
            .any(|p| matches!(p, Pattern::Below(suffix) if below(suffix)))
            .then_some(Match::Wildcard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn target(authority: &str) -> Target {
        Target::parse(authority).unwrap()
    }

    #[test]
    fn targets_parse_and_normalise() {
        assert_eq!(target("API.Anthropic.com.:443").host, "api.anthropic.com");
        let v6 = target("[::1]:8443");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8443));
        assert!(v6.ip.is_some());
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:99999",
            "::1:443",
            "[example.com]:443",
            "exa mple.com:443",
            "-bad.com:443",
            ":443",
            "a..b:443",
        ] {
            assert!(Target::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn exact_names_and_wildcards() {
        let list = allow(&["api.anthropic.com", "*.npmjs.org", "127.0.0.1", "[::1]"]);
        assert_eq!(
            list.matches(&target("api.anthropic.com:443")),
            Some(Match::Exact)
        );
        assert_eq!(list.matches(&target("anthropic.com:443")), None);
        assert_eq!(
            list.matches(&target("registry.npmjs.org:443")),
            Some(Match::Wildcard)
        );
        assert_eq!(list.matches(&target("npmjs.org:443")), None);
        assert_eq!(list.matches(&target("evilnpmjs.org:443")), None);
        assert_eq!(list.matches(&target("127.0.0.1:443")), Some(Match::Exact));
        assert_eq!(list.matches(&target("[::1]:443")), Some(Match::Exact));
        // A wildcard never matches a literal address.
        let list = allow(&["*.0.0.1"]);
        assert!(list.matches(&target("127.0.0.1:443")).is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["*", "*.", "a.*.b", "http://x.com", "x.com:443", "*.1.2.3.4"] {
            assert!(Allowlist::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(
            Allowlist::parse(&[String::new()])
                .unwrap()
                .patterns
                .is_empty()
        );
    }
}
