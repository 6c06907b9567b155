//! The lines with which `dispatch-broker` and `dispatch-gateway` announce
//! on stdout where they listen, parsed in one place for tests and
//! benchmarks. A change of wording breaks every harness that starts the
//! binaries, rather than one copy of the parser.

/// Prefix of the broker's line with its gRPC address.
pub const BROKER_LISTENING: &str = "dispatch-broker listening on ";
/// Prefix of the broker's line with its metrics URL.
pub const BROKER_METRICS: &str = "dispatch-broker metrics on http://";
/// Prefix of the gateway's line with its URL.
pub const GATEWAY_LISTENING: &str = "dispatch-gateway listening on ";
/// Prefix of the gateway's line with its egress proxy's address.
pub const GATEWAY_EGRESS: &str = "dispatch-gateway egress proxy on ";

/// The broker's gRPC address (`host:port` or `unix:/path`), if `line`
/// announces it.
pub fn broker_address(line: &str) -> Option<&str> {
    line.strip_prefix(BROKER_LISTENING)
}

/// The broker's metrics address (`host:port`), if `line` announces it.
pub fn broker_metrics_address(line: &str) -> Option<&str> {
    line.strip_prefix(BROKER_METRICS)
        .map(|url| url.trim_end_matches("/metrics"))
}

/// The gateway's URL (`http://host:port`), if `line` announces it.
pub fn gateway_url(line: &str) -> Option<&str> {
    line.strip_prefix(GATEWAY_LISTENING)
}

/// The socket address in what follows a prefix above: `host:port`,
/// `http://host:port` or `http://host:port/metrics`.
pub fn socket_addr(rest: &str) -> Option<std::net::SocketAddr> {
    let rest = rest.trim();
    let rest = rest.strip_prefix("http://").unwrap_or(rest);
    rest.trim_end_matches("/metrics").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_announcement() {
        assert_eq!(
            broker_address("dispatch-broker listening on 127.0.0.1:4000"),
            Some("127.0.0.1:4000")
        );
        assert_eq!(
            broker_metrics_address("dispatch-broker metrics on http://127.0.0.1:9100/metrics"),
            Some("127.0.0.1:9100")
        );
        assert_eq!(
            gateway_url("dispatch-gateway listening on http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(broker_address("something else"), None);
        let addr = Some("127.0.0.1:8080".parse().unwrap());
        assert_eq!(socket_addr("http://127.0.0.1:8080"), addr);
        assert_eq!(socket_addr("127.0.0.1:8080"), addr);
        assert_eq!(socket_addr("http://127.0.0.1:8080/metrics"), addr);
        assert_eq!(socket_addr("unix:/tmp/b.sock"), None);
    }
}
