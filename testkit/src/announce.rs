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
    }
}
