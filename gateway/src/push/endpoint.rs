//! Which push endpoints the gateway POSTs to. An endpoint is a URL the
//! browser hands over, so it is checked as an outgoing request to a
//! user-supplied address (server-side request forgery): `https` only, no
//! user info, and no host that is or resolves to a loopback, private,
//! link-local or otherwise non-public address. The check is made when a
//! subscription is stored and again by the resolver of every push (so a name
//! that resolves elsewhere later is still refused); redirects are not
//! followed. `PUSH_ALLOW_PRIVATE_ENDPOINTS` lifts the address and scheme rule
//! (for a push service on the local network, and for tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// The longest endpoint accepted, in bytes.
pub const MAX_ENDPOINT_LENGTH: usize = 2048;

/// `text` as an endpoint the gateway may POST to, or why not.
pub fn check(text: &str, allow_private: bool) -> Result<Url, String> {
    if text.len() > MAX_ENDPOINT_LENGTH {
        return Err(format!(
            "the endpoint is longer than {MAX_ENDPOINT_LENGTH} bytes"
        ));
    }
    let url = Url::parse(text).map_err(|e| format!("the endpoint is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("the endpoint must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the endpoint must not carry user information".into());
    }
    let host = match url.host_str() {
        Some(host) => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            bare.parse()
                .map_or_else(|_| Host::Name(host.to_ascii_lowercase()), Host::Ip)
        }
        None => return Err("the endpoint has no host".into()),
    };
    if allow_private {
        return Ok(url);
    }
    match host {
        Host::Ip(ip) if !is_public(ip) => {
            Err(format!("the endpoint's address {ip} is not a public one"))
        }
        Host::Name(name) if name == "localhost" || name.ends_with(".localhost") => {
            Err("the endpoint's host is a loopback name".into())
        }
        _ => Ok(url),
    }
}

enum Host {
    Name(String),
    Ip(IpAddr),
}

/// Whether `ip` is a public unicast address (not loopback, private,
/// link-local, shared, documentation, multicast, reserved or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let global_unicast = segments[0] & 0xe000 == 0x2000;
    let documentation = segments[0] == 0x2001 && segments[1] == 0x0db8;
    let six_to_four = segments[0] == 0x2002;
    let six_to_four_public = six_to_four && {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        is_public_v4(Ipv4Addr::new(a, b, c, d))
    };
    global_unicast && !documentation && (!six_to_four || six_to_four_public)
}

/// The resolver of push requests: a name's public addresses only, and an
/// error when it has none.
#[derive(Debug, Default)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{name} resolves to no public address").into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for public in ["8.8.8.8", "142.250.1.1", "2607:f8b0::1", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "2002:7f00:0001::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn endpoints() {
        let ok = |text| check(text, false).map(|_| ());
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc").is_ok());
        assert!(ok("http://fcm.googleapis.com/x").is_err());
        assert!(ok("https://127.0.0.1/x").is_err());
        assert!(ok("https://[::1]:8443/x").is_err());
        assert!(ok("https://169.254.169.254/latest").is_err());
        assert!(ok("https://LOCALHOST/x").is_err());
        assert!(ok("https://user:pw@push.example/x").is_err());
        assert!(ok("file:///etc/passwd").is_err());
        assert!(ok("not a url").is_err());
        assert!(ok(&format!("https://push.example/{}", "a".repeat(3000))).is_err());
        assert!(check("http://127.0.0.1:9/x", true).is_ok());
        assert!(check("ftp://127.0.0.1/x", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_gives_no_private_address() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = match PublicOnly.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(refused.contains("no public address"), "{refused}");
    }
}
