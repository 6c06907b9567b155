//! What the gateway needs to run ([`Config`]): flags, each also an
//! environment variable (the seed's names kept), and the checks that refuse
//! an unsafe start. The command line around it is
//! [`crate::binary::Cli`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;

/// The seed's example key: refused everywhere.
pub const DEFAULT_KEY: &str = "change-me";

/// The fewest characters a key may have when the gateway is reachable from
/// other machines (bound off loopback, or with the tunnel on).
pub const MIN_KEY_LENGTH: usize = 16;

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
    /// Unset on loopback: a random key is generated and printed once on stderr.
    /// `change-me` is refused; off loopback or with the tunnel it must have at
    /// least `MIN_KEY_LENGTH` characters.
    #[arg(long, env = "TERMINAL_KEY", hide_env_values = true)]
    pub terminal_key: Option<String>,

    /// Fewest characters of `TERMINAL_KEY` off loopback or with the tunnel on (at least 16).
    #[arg(long, env = "MIN_KEY_LENGTH", default_value_t = MIN_KEY_LENGTH)]
    pub min_key_length: usize,

    /// Host names (comma-separated, e.g. `term.example.com`) the gateway answers to, besides
    /// loopback names, IP addresses, the hosts of `ALLOWED_ORIGINS` and the tunnel's host.
    /// A request for any other `Host` is refused with 421 (DNS rebinding).
    #[arg(long, env = "PUBLIC_HOSTS", value_delimiter = ',')]
    pub public_hosts: Vec<String>,

    /// Private directory (created with mode 0700) for the login-token salt and the
    /// logout revocations (default: `$XDG_STATE_HOME/dispatch-gateway`, else
    /// `~/.local/state/dispatch-gateway`).
    #[arg(long, env = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Most logout revocations kept (each until its token would have expired).
    #[arg(long, env = "MAX_REVOKED_TOKENS", default_value_t = 10_000)]
    pub max_revoked_tokens: usize,

    /// The broker's gRPC address (`http://host:port` or `unix:/path/to.sock`).
    /// When unset, the gateway runs its own `dispatch-broker` on a private Unix socket
    /// under `STATE_DIR` (it outlives the gateway; `dispatch-gateway stop` ends it).
    #[arg(long, env = "BROKER_URL")]
    pub broker_url: Option<String>,

    /// Shared secret sent to the broker as `authorization: Bearer <token>`.
    #[arg(long, env = "BROKER_TOKEN", hide_env_values = true)]
    pub broker_token: Option<String>,

    /// The `dispatch-broker` binary to start when `BROKER_URL` is unset
    /// (default: the one beside this executable, else the one on `PATH`).
    #[arg(long, env = "BROKER_BIN")]
    pub broker_bin: Option<PathBuf>,

    /// Seconds after which the local broker (`BROKER_URL` unset), once it has no
    /// session and no gateway, stops by itself (0: never).
    #[arg(long, env = "LOCAL_BROKER_IDLE_EXIT_SECS", default_value_t = 300)]
    pub local_broker_idle_exit_secs: u64,

    /// Open a public URL through a LocalTunnel server.
    #[arg(long, env = "ENABLE_TUNNEL", default_value = "false", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub enable_tunnel: bool,

    /// Subdomain to ask the LocalTunnel server for.
    #[arg(long, env = "LT_SUBDOMAIN")]
    pub lt_subdomain: Option<String>,

    /// LocalTunnel server to register with (default: the public LocalTunnel service).
    #[arg(long, env = "LT_HOST")]
    pub lt_host: Option<String>,

    /// The egress proxy sessions reach the outside through (`EGRESS_*`).
    #[command(flatten)]
    pub egress: crate::egress::EgressConfig,

    /// Extra origins (comma-separated, e.g. `https://term.example.com`) allowed to open
    /// WebSockets and send state-changing requests, besides the gateway's own.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Which peers are trusted reverse proxies: `false` (none, the default), `loopback`,
    /// `true` (any), or a comma-separated list of IP addresses. A trusted proxy's
    /// `X-Forwarded-Proto: https` makes the cookie Secure and its `X-Forwarded-For`
    /// names the client for rate limiting: the rightmost entry that is not itself a
    /// trusted proxy (with `true`, the rightmost entry).
    #[arg(long, env = "TRUST_PROXY", default_value = "false")]
    pub trust_proxy: TrustProxy,

    /// Lifetime of a login session cookie, in seconds (at least 1).
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_ttl_secs: u64,

    /// Failed logins allowed in a burst per client address before 429.
    #[arg(long, env = "LOGIN_BURST", default_value_t = 10)]
    pub login_burst: u32,

    /// Seconds for one more failed login to be allowed after the burst is used.
    #[arg(long, env = "LOGIN_REFILL_SECS", default_value_t = 6)]
    pub login_refill_secs: u64,

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

    /// Seconds a client has to send a whole request body, and in a larger body (an
    /// upload) each further 64 KiB; later is refused with 408.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_body_timeout_secs: u64,

    /// Largest file upload (`PUT /api/sessions/{id}/files/content`), in bytes: a larger
    /// `Content-Length` is refused with 413 before the body is read, and a body that
    /// grows past it is cut off with 413 (nothing is written).
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_upload_bytes: u64,

    /// Requests served on one connection before it is closed (`Connection: close`).
    #[arg(long, env = "HTTP_MAX_REQUESTS_PER_CONNECTION", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_max_requests_per_connection: u64,

    /// The broker's largest gRPC message (the broker reads the same variable): terminal
    /// input frames that would not fit in one are refused by the gateway with 1009.
    #[arg(long, env = "BROKER_MAX_MESSAGE_BYTES", default_value_t = dispatch_proto::limits::MAX_MESSAGE_BYTES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4096..))]
    pub broker_max_message_bytes: usize,

    /// Where a JSON POST goes each time a session needs its user (see the
    /// notify module); off when unset. Never logged.
    #[arg(long, env = "NOTIFY_WEBHOOK_URL")]
    pub notify_webhook_url: Option<crate::notify::WebhookUrl>,

    /// No webhook POST for a session a viewer typed in within this many seconds.
    #[arg(long, env = "NOTIFY_QUIET_AFTER_INPUT_SECS", default_value_t = 5)]
    pub notify_quiet_after_input_secs: u64,

    /// Compress terminal output for browsers that ask for it (the
    /// `dispatch.deflate-raw` WebSocket subprotocol of docs/protocol.md).
    #[arg(long, env = "TERMINAL_COMPRESSION", default_value = "true", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub terminal_compression: bool,

    /// TCP_NOTSENT_LOWAT of accepted connections: unsent bytes the kernel
    /// takes per socket, so output waits in the gateway, where it is still
    /// coalesced, rather than in kernel buffers (0: the kernel's default).
    #[arg(long, env = "TCP_NOTSENT_LOWAT_BYTES", default_value_t = 16 * 1024)]
    pub tcp_notsent_lowat_bytes: u32,

    /// Read-only share links' limits (`MAX_SHARES_PER_SESSION`, `SHARE_MAX_TTL_SECS`).
    #[command(flatten)]
    pub shares: crate::shares::ShareConfig,

    /// Web Push to subscribed browsers (`PUSH_*`, see the push module).
    #[command(flatten)]
    pub push: crate::push::PushConfig,
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
    #[error(
        "ERROR: TERMINAL_KEY \"change-me\" is the well-known example key; choose another (unset on loopback, a random one is generated)"
    )]
    WellKnownKey,
    #[error("ERROR: TERMINAL_KEY has {length} characters; at least {min} are required {exposure}")]
    ShortKey {
        length: usize,
        min: usize,
        exposure: String,
    },
    #[error("ERROR: MIN_KEY_LENGTH must be at least {MIN_KEY_LENGTH}, not {0}")]
    MinKeyLengthTooLow(usize),
    #[error("ERROR: SESSION_TTL_SECS must be at least 1")]
    ZeroSessionTtl,
    #[error("ERROR: ALLOWED_ORIGINS entry {0:?} is not an origin like https://host[:port]")]
    BadOrigin(String),
    #[error("ERROR: PUBLIC_HOSTS entry {0:?} is not a host name like term.example.com")]
    BadPublicHost(String),
}

impl Config {
    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The key when one was given (an empty `TERMINAL_KEY` counts as unset).
    pub fn given_key(&self) -> Option<&str> {
        self.terminal_key.as_deref().filter(|key| !key.is_empty())
    }

    /// Whether no key was given, or the seed's example key.
    pub fn key_is_default(&self) -> bool {
        self.given_key().is_none_or(|key| key == DEFAULT_KEY)
    }

    /// How long a login lasts.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs.max(1))
    }

    /// Where the salt and the revocations are kept.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.state_dir
            .clone()
            .filter(|dir| !dir.as_os_str().is_empty())
            .or_else(crate::state_dir::default_dir)
    }

    /// [`Config::state_dir`], or an error saying to set `STATE_DIR`.
    pub fn required_state_dir(&self) -> anyhow::Result<PathBuf> {
        self.state_dir().ok_or_else(|| {
            anyhow::anyhow!("ERROR: set STATE_DIR (HOME is unset, so there is no default)")
        })
    }

    /// Refuses an unsafe start: the example key anywhere, no key or a short
    /// one where other machines can reach the gateway, malformed origins or
    /// hosts, a zero session lifetime. Run once, by [`crate::Gateway::new`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.allowed_origins {
            if crate::origin::normalize_origin(origin).is_none() {
                return Err(ConfigError::BadOrigin(origin.clone()));
            }
        }
        for host in &self.public_hosts {
            if crate::origin::normalize_host(host).is_none() {
                return Err(ConfigError::BadPublicHost(host.clone()));
            }
        }
        if self.session_ttl_secs == 0 {
            return Err(ConfigError::ZeroSessionTtl);
        }
        if self.min_key_length < MIN_KEY_LENGTH {
            return Err(ConfigError::MinKeyLengthTooLow(self.min_key_length));
        }
        self.validate_key()
    }

    fn validate_key(&self) -> Result<(), ConfigError> {
        let exposure = if self.enable_tunnel {
            if self.key_is_default() {
                return Err(ConfigError::DefaultKeyWithTunnel);
            }
            Some("when ENABLE_TUNNEL=true".to_string())
        } else if !self.host.to_canonical().is_loopback() {
            if self.key_is_default() {
                return Err(ConfigError::DefaultKeyOffLoopback(self.host));
            }
            Some(format!("when binding to {}", self.host))
        } else {
            None
        };
        let Some(key) = self.given_key() else {
            return Ok(());
        };
        if key == DEFAULT_KEY {
            return Err(ConfigError::WellKnownKey);
        }
        let length = key.chars().count();
        match exposure {
            Some(exposure) if length < self.min_key_length => Err(ConfigError::ShortKey {
                length,
                min: self.min_key_length,
                exposure,
            }),
            _ => Ok(()),
        }
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
        assert_eq!(c.validate(), Err(ConfigError::WellKnownKey));
        let c = parse(&[]);
        assert!(c.validate().is_ok(), "generated on loopback");
        let c = parse(&["--host", "0.0.0.0", "--terminal-key", "s3cret"]);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ShortKey { length: 6, .. })
        ));
        let c = parse(&["--enable-tunnel", "--terminal-key", "s3cret"]);
        assert!(matches!(c.validate(), Err(ConfigError::ShortKey { .. })));
        let c = parse(&["--terminal-key", "s3cret"]);
        assert!(c.validate().is_ok(), "short keys on loopback");
        let c = parse(&["--host", "0.0.0.0", "--terminal-key", "sixteen-chars-ok"]);
        assert!(c.validate().is_ok());
        let c = parse(&["--min-key-length", "8"]);
        assert_eq!(c.validate(), Err(ConfigError::MinKeyLengthTooLow(8)));
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
