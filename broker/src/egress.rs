//! The egress proxy that sessions reach the outside through
//! (`EGRESS_PROXY_URL`, served by the gateway): its address, and the proxy
//! variables each session gets, carrying that session's own credentials
//! (see [`dispatch_proto::egress`]). No other secret goes with them.

use std::fmt;
use std::str::FromStr;

use dispatch_proto::egress::EgressKey;

/// Hosts a session reaches without the proxy.
pub const NO_PROXY: &str = "localhost,127.0.0.1";

/// The proxy's address: `http://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    /// A name, an IPv4 address or a bracketed IPv6 address.
    host: String,
    port: u16,
}

impl FromStr for ProxyUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("EGRESS_PROXY_URL {s:?}: {why} (expected http://host:port)");
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| bad("the scheme must be http"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '@', '?', '#']) {
            return Err(bad("no credentials, path or query allowed"));
        }
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| bad("a port is required"))?;
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let bracketed = host.starts_with('[') && host.ends_with(']');
        let valid = match bracketed {
            true => host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok(),
            false => {
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            }
        };
        if !valid || port == 0 {
            return Err(bad("bad host or port"));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

impl ProxyUrl {
    /// The proxy URL with session `session_id`'s credentials.
    fn with_credentials(&self, session_id: &str, secret: &str) -> String {
        format!("http://{session_id}:{secret}@{}:{}", self.host, self.port)
    }
}

/// The proxy variables of session `session_id` (empty without a proxy).
pub fn session_env(
    proxy: Option<&ProxyUrl>,
    broker_token: &str,
    session_id: &str,
) -> Vec<(String, String)> {
    let Some(proxy) = proxy else {
        return Vec::new();
    };
    let secret = EgressKey::derive(broker_token).secret(session_id);
    let url = proxy.with_credentials(session_id, &secret);
    let mut env: Vec<(String, String)> = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]
        .into_iter()
        .map(|name| (name.to_owned(), url.clone()))
        .collect();
    for name in ["NO_PROXY", "no_proxy"] {
        env.push((name.to_owned(), NO_PROXY.to_owned()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse() {
        let url: ProxyUrl = "http://gateway:3128".parse().unwrap();
        assert_eq!(url.to_string(), "http://gateway:3128");
        assert!("http://[::1]:3128/".parse::<ProxyUrl>().is_ok());
        for bad in [
            "https://gateway:3128",
            "http://gateway",
            "http://u:p@gateway:3128",
            "http://gateway:3128/path",
            "http://:3128",
            "http://gateway:0",
            "gateway:3128",
        ] {
            assert!(bad.parse::<ProxyUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sessions_get_their_own_credentials() {
        let proxy: ProxyUrl = "http://gateway:3128".parse().unwrap();
        let env = session_env(Some(&proxy), "token", "s1");
        let secret = EgressKey::derive("token").secret("s1");
        let url = format!("http://s1:{secret}@gateway:3128");
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
            assert!(env.contains(&(name.to_owned(), url.clone())), "{name}");
        }
        assert!(env.contains(&("NO_PROXY".to_owned(), NO_PROXY.to_owned())));
        assert!(env.iter().all(|(_, v)| !v.contains("token")));
        assert!(session_env(None, "token", "s1").is_empty());
    }
}
