//! The gateway's configuration: command-line flags, each also an environment
//! variable (the seed's names kept), and the checks that refuse an unsafe
//! start.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;

/// The seed's default key. Accepted only on a loopback address, with a warning.
pub const DEFAULT_KEY: &str = "change-me";

/// Everything `dispatch-gateway` can be told.
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address to bind. Loopback by default; `0.0.0.0` only when asked (as in a container).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// The key users log in with. Never logged, never put in a URL or a child's environment.
    #[arg(long, env = "TERMINAL_KEY", default_value = DEFAULT_KEY, hide_env_values = true, hide_default_value = true)]
    pub terminal_key: String,

    /// The broker's gRPC address (`http://host:port` or `unix:/path/to.sock`).
    /// When unset, the gateway starts its own `dispatch-broker` child on a private Unix socket.
    #[arg(long, env = "BROKER_URL")]
    pub broker_url: Option<String>,

    /// Shared secret sent to the broker as `authorization: Bearer <token>`.
    #[arg(long, env = "BROKER_TOKEN", hide_env_values = true)]
    pub broker_token: Option<String>,

    /// The `dispatch-broker` binary to start when `BROKER_URL` is unset
    /// (default: the one beside this executable, else the one on `PATH`).
    #[arg(long, env = "BROKER_BIN")]
    pub broker_bin: Option<PathBuf>,

    /// Open a public URL through a LocalTunnel server.
    #[arg(long, env = "ENABLE_TUNNEL", default_value = "false", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub enable_tunnel: bool,

    /// Subdomain to ask the LocalTunnel server for.
    #[arg(long, env = "LT_SUBDOMAIN")]
    pub lt_subdomain: Option<String>,

    /// LocalTunnel server to register with (default: the public LocalTunnel service).
    #[arg(long, env = "LT_HOST")]
    pub lt_host: Option<String>,

    /// Extra origins (comma-separated, e.g. `https://term.example.com`) allowed to open
    /// WebSockets and send state-changing requests, besides the gateway's own.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Which peers are trusted reverse proxies: `false` (none, the default), `loopback`,
    /// `true` (any), or a comma-separated list of IP addresses. A trusted proxy's
    /// `X-Forwarded-Proto: https` makes the cookie Secure and its `X-Forwarded-For`
    /// names the client for rate limiting.
    #[arg(long, env = "TRUST_PROXY", default_value = "false")]
    pub trust_proxy: TrustProxy,

    /// Lifetime of a login session cookie, in seconds.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_ttl_secs: u64,

    /// Failed logins allowed in a burst per client address before 429.
    #[arg(long, env = "LOGIN_BURST", default_value_t = 10)]
    pub login_burst: u32,

    /// Seconds for one more failed login to be allowed after the burst is used.
    #[arg(long, env = "LOGIN_REFILL_SECS", default_value_t = 6)]
    pub login_refill_secs: u64,

    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// The egress proxy sessions reach the outside through (`EGRESS_*`).
    #[command(flatten)]
    pub egress: crate::egress::EgressConfig,

    /// HTTP connections served at once (WebSockets excluded); more are refused with 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// HTTP connections one client address (an IPv6 /64) may hold at once; more are
    /// refused with 503. Trusted proxies (`TRUST_PROXY`) and the tunnel are exempt.
    #[arg(long, env = "MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: u32,

    /// Seconds a client has to send a complete request head once the connection waits
    /// for one (also between requests on a kept-alive HTTP/1.1 connection).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_header_timeout_secs: u64,

    /// Seconds after which a connection with no request in progress is closed.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_idle_timeout_secs: u64,

    /// Seconds a client has to send a whole request body; later is refused with 408.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_body_timeout_secs: u64,

    /// Requests served on one connection before it is closed (`Connection: close`).
    #[arg(long, env = "HTTP_MAX_REQUESTS_PER_CONNECTION", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_max_requests_per_connection: u64,

    /// The broker's largest gRPC message (the broker reads the same variable): terminal
    /// input frames that would not fit in one are refused by the gateway with 1009.
    #[arg(long, env = "BROKER_MAX_MESSAGE_BYTES", default_value_t = dispatch_proto::limits::MAX_MESSAGE_BYTES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4096..))]
    pub broker_max_message_bytes: usize,
}

/// Which peers may set `X-Forwarded-*` headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustProxy {
    /// Forwarded headers are ignored.
    None,
    /// Peers on a loopback address are trusted.
    Loopback,
    /// Every peer is trusted (the gateway sits behind a proxy on a private network).
    All,
    /// These addresses are trusted.
    List(Vec<IpAddr>),
}

impl std::str::FromStr for TrustProxy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "0" | "no" | "none" => Ok(Self::None),
            "true" | "1" | "yes" | "all" => Ok(Self::All),
            "loopback" => Ok(Self::Loopback),
            list => list
                .split(',')
                .map(|ip| {
                    ip.trim()
                        .parse()
                        .map_err(|_| format!("TRUST_PROXY: {ip:?} is not an IP address"))
                })
                .collect::<Result<_, _>>()
                .map(Self::List),
        }
    }
}

impl TrustProxy {
    /// Whether a peer at `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Loopback => ip.is_loopback() || ip.to_canonical().is_loopback(),
            Self::List(ips) => ips.iter().any(|t| t.to_canonical() == ip.to_canonical()),
        }
    }
}

/// Why the gateway refuses to start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("ERROR: TERMINAL_KEY must be set when ENABLE_TUNNEL=true for security")]
    DefaultKeyWithTunnel,
    #[error(
        "ERROR: TERMINAL_KEY must be set when binding to the non-loopback address {0} for security"
    )]
    DefaultKeyOffLoopback(IpAddr),
    #[error("ERROR: ALLOWED_ORIGINS entry {0:?} is not an origin like https://host[:port]")]
    BadOrigin(String),
}

impl Config {
    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Whether the key is the seed's default or empty.
    pub fn key_is_default(&self) -> bool {
        self.terminal_key.is_empty() || self.terminal_key == DEFAULT_KEY
    }

    /// How long a login lasts.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs.max(60))
    }

    /// Refuses a start that would expose the default key; returns the warnings
    /// to print loudly otherwise.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        for origin in &self.allowed_origins {
            if crate::origin::normalize_origin(origin).is_none() {
                return Err(ConfigError::BadOrigin(origin.clone()));
            }
        }
        if !self.key_is_default() {
            return Ok(Vec::new());
        }
        if self.enable_tunnel {
            return Err(ConfigError::DefaultKeyWithTunnel);
        }
        if !self.host.to_canonical().is_loopback() {
            return Err(ConfigError::DefaultKeyOffLoopback(self.host));
        }
        Ok(vec![format!(
            "WARNING: TERMINAL_KEY is {}; anyone who can reach {} can log in with it. Set TERMINAL_KEY.",
            if self.terminal_key.is_empty() {
                "empty"
            } else {
                "the default \"change-me\""
            },
            self.listen_addr()
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["dispatch-gateway"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().config
    }

    #[test]
    fn default_key_refused_off_loopback_and_with_tunnel() {
        let c = parse(&["--host", "0.0.0.0", "--terminal-key", "change-me"]);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::DefaultKeyOffLoopback(_))
        ));
        let c = parse(&["--enable-tunnel", "--terminal-key", ""]);
        assert_eq!(c.validate(), Err(ConfigError::DefaultKeyWithTunnel));
        assert_eq!(
            ConfigError::DefaultKeyWithTunnel.to_string(),
            "ERROR: TERMINAL_KEY must be set when ENABLE_TUNNEL=true for security"
        );
        let c = parse(&["--terminal-key", "change-me"]);
        assert_eq!(c.validate().unwrap().len(), 1);
        let c = parse(&["--host", "0.0.0.0", "--terminal-key", "s3cret"]);
        assert!(c.validate().unwrap().is_empty());
    }

    #[test]
    fn trust_proxy_parses() {
        assert_eq!("false".parse::<TrustProxy>().unwrap(), TrustProxy::None);
        assert_eq!(
            "loopback".parse::<TrustProxy>().unwrap(),
            TrustProxy::Loopback
        );
        let list: TrustProxy = "10.0.0.1, ::1".parse().unwrap();
        assert!(list.trusts("10.0.0.1".parse().unwrap()));
        assert!(!list.trusts("10.0.0.2".parse().unwrap()));
        assert!("nope".parse::<TrustProxy>().is_err());
    }
}
