//! Where a target may lead: the proxy resolves names itself, refuses
//! addresses inside the host's networks (loopback, private, link-local,
//! unique-local, multicast, unspecified, cloud metadata) unless the host is
//! allowlisted by its exact name, and connects to the vetted addresses only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::allowlist::Target;

/// The cloud metadata services' addresses.
const METADATA: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Why an address is not a public one, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    if METADATA.contains(&ip) {
        return Some("cloud metadata");
    }
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return non_public(IpAddr::V4(v4));
    }
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else {
        None
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(v4(s[1], s[2]))
    } else {
        None
    }
}

/// Why resolving a target gave nothing usable.
#[derive(Debug)]
pub enum ResolveError {
    /// The name does not resolve.
    Unresolvable(String),
    /// It resolves to an address that is not public (`ip`, what it is).
    NonPublic(IpAddr, &'static str),
}

/// The addresses to connect to for `target`; non-public ones refused unless
/// `exact` (the host is allowlisted by its exact name). Names under
/// `localhost` are loopback (RFC 6761) and never asked of DNS.
pub async fn resolve(target: &Target, exact: bool) -> Result<Vec<SocketAddr>, ResolveError> {
    let addresses = match target.ip {
        Some(ip) => vec![SocketAddr::new(ip, target.port)],
        None if is_localhost(&target.host) => {
            [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
                .into_iter()
                .map(|ip: IpAddr| SocketAddr::new(ip, target.port))
                .collect()
        }
        None => lookup(target).await?,
    };
    if !exact {
        for address in &addresses {
            if let Some(kind) = non_public(address.ip()) {
                return Err(ResolveError::NonPublic(address.ip(), kind));
            }
        }
    }
    Ok(addresses)
}

fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

async fn lookup(target: &Target) -> Result<Vec<SocketAddr>, ResolveError> {
    let mut addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| ResolveError::Unresolvable(e.to_string()))?
            .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
            .collect();
    addresses.dedup();
    if addresses.is_empty() {
        return Err(ResolveError::Unresolvable("no addresses".into()));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn classifies_addresses() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("100.100.100.200", "shared (carrier-grade NAT)"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd12::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
        for public in [
            "1.1.1.1",
            "160.79.104.10",
            "2607:6bc0::10",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[tokio::test]
    async fn localhost_names_are_loopback_and_refused_unless_exact() {
        let target = Target::parse("foo.localhost:443").unwrap();
        assert!(matches!(
            resolve(&target, false).await,
            Err(ResolveError::NonPublic(_, "loopback"))
        ));
        let addresses = resolve(&target, true).await.unwrap();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()));
        let literal = Target::parse("169.254.169.254:80").unwrap();
        assert!(matches!(
            resolve(&literal, false).await,
            Err(ResolveError::NonPublic(_, "cloud metadata"))
        ));
    }
}
