//! What the broker needs to run ([`Config`]): every setting a flag that can
//! also be set through the environment variable named beside it, and the
//! checks clap cannot make. The token is never printed (`Debug` redacts it).
//! The command line around it is [`crate::binary::Cli`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

/// Where the broker listens: `host:port` or `unix:/path/to.sock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>()
            .map(Self::Tcp)
            .map_err(|e| format!("expected host:port or unix:/path ({e})"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl ListenAddr {
    /// Whether only local processes can reach this address.
    pub fn is_local(&self) -> bool {
        match self {
            Self::Tcp(addr) => addr.ip().is_loopback(),
            Self::Unix(_) => true,
        }
    }
}

/// The mode a session runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DefaultMode {
    Shell,
    Claude,
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<unset>")
        } else {
            f.write_str("<redacted>")
        }
    }
}

impl Secret {
    /// The value of environment variable `name` (empty when unset).
    pub fn from_env(name: &str) -> Self {
        Self(std::env::var(name).unwrap_or_default())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Everything the broker needs to run.
#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address to serve gRPC on: `host:port`, or `unix:/path/to.sock` for a
    /// Unix socket (created with mode 0600).
    #[arg(long, env = "BROKER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: ListenAddr,

    /// Shared secret every call but health must present as
    /// `authorization: Bearer <token>`. Required on every TCP address
    /// (loopback included); only a Unix socket (mode 0600) may go without.
    #[arg(
        long,
        env = "BROKER_TOKEN",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub token: Secret,

    /// Directory holding one 0700 directory per session.
    #[arg(long, env = "PTY_ROOT", default_value = "/tmp/dispatch-sessions")]
    pub pty_root: PathBuf,

    /// Mode of sessions created without an explicit mode.
    #[arg(long, env = "PTY_MODE", value_enum, default_value = "shell")]
    pub pty_mode: DefaultMode,

    /// Comma-separated names of extra environment variables passed from the
    /// broker to sessions (beyond the fixed allowlist).
    #[arg(
        long,
        env = "SESSION_ENV_PASSTHROUGH",
        value_delimiter = ',',
        default_value = ""
    )]
    pub session_env_passthrough: Vec<String>,

    /// Maximum number of sessions (running and retained ended ones).
    #[arg(long, env = "BROKER_MAX_SESSIONS", default_value_t = 256)]
    pub max_sessions: usize,

    /// Maximum size in bytes of one gRPC message received by the broker.
    #[arg(long, env = "BROKER_MAX_MESSAGE_BYTES", default_value_t = dispatch_proto::limits::MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// Bytes of scrollback kept per session (the lines that scrolled off the
    /// screen, replayed to new viewers).
    #[arg(long, env = "BROKER_SCROLLBACK_BYTES", default_value_t = 2 << 20)]
    pub scrollback_bytes: usize,

    /// Flow-control window in bytes: how far output may run ahead of the
    /// acknowledgements of the fastest acknowledging viewer.
    #[arg(long, env = "BROKER_FLOW_WINDOW_BYTES", default_value_t = 1 << 20)]
    pub flow_window_bytes: usize,

    /// Milliseconds of a viewer's measured delivery rate it may have in
    /// flight (its window, at most BROKER_FLOW_WINDOW_BYTES); 0 gives every
    /// viewer the fixed BROKER_FLOW_WINDOW_BYTES window.
    #[arg(long, env = "BROKER_FLOW_WINDOW_MS", default_value_t = 100)]
    pub flow_window_ms: u64,

    /// Milliseconds after which a viewer that stopped acknowledging no longer
    /// paces the PTY.
    #[arg(long, env = "BROKER_FLOW_STALL_MS", default_value_t = 3000)]
    pub flow_stall_ms: u64,

    /// Seconds an ended session stays listed (with its exit status).
    #[arg(long, env = "BROKER_RETENTION_SECS", default_value_t = 3600)]
    pub retention_secs: u64,

    /// Secret of the `dispatch.v1.Admin` service, read from the environment
    /// variable BROKER_ADMIN_TOKEN only (a flag would show in `ps`). Without
    /// it the Admin service is not served.
    #[arg(skip = Secret::from_env("BROKER_ADMIN_TOKEN"))]
    pub admin_token: Secret,

    /// Address serving Prometheus metrics at `/metrics` (plain HTTP, no
    /// authentication: keep it on an internal network). Off when unset.
    #[arg(long, env = "BROKER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Claude Code home whose `projects/` folder the conversation browser
    /// indexes, read-only (default: `.claude` in the broker's home).
    #[arg(long, env = "CLAUDE_HOME")]
    pub claude_home: Option<PathBuf>,

    /// JSON price table that overrides or extends the built-in per-model
    /// prices behind cost estimates (`{"version": "...", "models": {"<model
    /// id>": {"input", "output", "cacheWrite5m", "cacheWrite1h",
    /// "cacheRead"}}}`, USD per million tokens). A broker with an unreadable
    /// or invalid file does not start.
    #[arg(long, env = "PRICES_FILE")]
    pub prices_file: Option<PathBuf>,

    /// The gateway's egress proxy (`http://host:port`). When set, every
    /// session gets HTTPS_PROXY/HTTP_PROXY (and the lower-case forms) with
    /// its own credentials, derived from BROKER_TOKEN, and
    /// NO_PROXY=localhost,127.0.0.1.
    #[arg(long, env = "EGRESS_PROXY_URL")]
    pub egress_proxy_url: Option<crate::egress::ProxyUrl>,

    /// Seconds after which a broker with no session and no call stops by
    /// itself; with a Unix socket it also stops once its socket file is
    /// removed or replaced (nobody can reach it any more). 0: never. The
    /// gateway sets it for the broker it starts in local mode.
    #[arg(long, env = "BROKER_IDLE_EXIT_SECS", default_value_t = 0)]
    pub idle_exit_secs: u64,

    /// Least seconds between two bells that set a session's attention: a
    /// storm of bells sets it once (notification sequences always do).
    #[arg(long, env = "NOTIFY_MIN_INTERVAL_SECS", default_value_t = 30)]
    pub notify_min_interval_secs: u64,
}

impl Config {
    /// A configuration with the defaults, for tests and embedding.
    pub fn with_defaults(listen: ListenAddr, token: &str, pty_root: PathBuf) -> Self {
        Self {
            listen,
            token: Secret(token.to_owned()),
            pty_root,
            pty_mode: DefaultMode::Shell,
            session_env_passthrough: Vec::new(),
            max_sessions: 256,
            max_message_bytes: dispatch_proto::limits::MAX_MESSAGE_BYTES,
            scrollback_bytes: 2 << 20,
            flow_window_bytes: 512 << 10,
            flow_window_ms: 100,
            flow_stall_ms: 3000,
            retention_secs: 3600,
            admin_token: Secret::default(),
            metrics_listen: None,
            claude_home: None,
            prices_file: None,
            egress_proxy_url: None,
            idle_exit_secs: 0,
            notify_min_interval_secs: 30,
        }
    }

    pub fn flow_window_time(&self) -> Duration {
        Duration::from_millis(self.flow_window_ms)
    }

    pub fn flow_stall(&self) -> Duration {
        Duration::from_millis(self.flow_stall_ms)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_secs)
    }

    /// Checks the combinations clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.token.0.is_empty() && matches!(self.listen, ListenAddr::Tcp(_)) {
            return Err(format!(
                "refusing to listen on TCP {} without BROKER_TOKEN: any local user could \
                 run commands (set BROKER_TOKEN, or listen on a unix: socket, created with \
                 mode 0600)",
                self.listen
            ));
        }
        if self.egress_proxy_url.is_some() && self.token.0.is_empty() {
            return Err(
                "EGRESS_PROXY_URL needs BROKER_TOKEN: sessions' proxy credentials are derived from it"
                    .into(),
            );
        }
        if !self.admin_token.0.is_empty() && self.admin_token.0 == self.token.0 {
            return Err("BROKER_ADMIN_TOKEN must differ from BROKER_TOKEN".into());
        }
        if self.flow_window_bytes < 4096 {
            return Err("BROKER_FLOW_WINDOW_BYTES must be at least 4096".into());
        }
        if self.max_message_bytes < 4096 {
            return Err("BROKER_MAX_MESSAGE_BYTES must be at least 4096".into());
        }
        Ok(())
    }
}
