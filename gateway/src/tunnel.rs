//! The public URL: a LocalTunnel client that makes the gateway reachable
//! from outside (`ENABLE_TUNNEL=true`).
//!
//! It speaks the protocol of the LocalTunnel client (`localtunnel` on npm):
//!
//! 1. Register over HTTP: `GET <server>/?new`, or `GET <server>/<subdomain>`
//!    to ask for a subdomain. The JSON answer carries the tunnel `id`, the
//!    public `url`, the TCP `port` to connect back to and `max_conn_count`.
//! 2. Keep that many TCP connections open to the server's `port` (on the
//!    answer's `ip` if given, else the server's host). The server hands each
//!    one a visitor's HTTP connection, bytes unchanged: the client hands it to
//!    the gateway's HTTP server, or pipes it to the gateway's listener. Either
//!    way HTTP and WebSocket upgrades both work, and the `Host` header stays
//!    the public one.
//!
//! Unlike the npm client, this one survives the server going away: a closed
//! connection is re-opened, and when the server no longer accepts them the
//! registration is renewed with exponential backoff. The public URL is
//! published and logged once the first connection is open, and replaced by
//! `None` as soon as the tunnel is lost. Everything stops
//! when the shutdown token is cancelled.

mod backoff;
mod pool;
mod registration;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use self::backoff::Backoff;
use self::pool::PoolEnd;
pub use self::registration::{Registration, RegistrationError};

/// The public LocalTunnel service, used when `LT_HOST` is not set.
pub const DEFAULT_SERVER: &str = "https://localtunnel.me";

/// First and longest wait between two registration attempts.
const REGISTER_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Serves one tunnelled connection in-process until it closes; the address
/// is the tunnel server's end of it.
pub type ServeConnection =
    Arc<dyn Fn(TcpStream, SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Where visitors' connections go.
#[derive(Clone)]
pub enum Destination {
    /// Dial the gateway's listener and pipe the bytes both ways.
    Dial(SocketAddr),
    /// Hand each connection to the gateway's HTTP server directly.
    Serve(ServeConnection),
}

impl Destination {
    /// Dials `addr`; a wildcard listening address (`0.0.0.0`, `::`) is
    /// reached through the loopback address of its family.
    pub fn dial(addr: SocketAddr) -> Self {
        Self::Dial(reachable(addr))
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dial(addr) => write!(f, "Dial({addr})"),
            Self::Serve(_) => f.write_str("Serve"),
        }
    }
}

/// A subdomain to ask the tunnel server for (`LT_SUBDOMAIN`): 4 to 63
/// lowercase letters, digits and inner hyphens, the rule LocalTunnel servers
/// apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subdomain(String);

/// Why a subdomain was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid LT_SUBDOMAIN {0:?}: use 4 to 63 lowercase letters, digits or inner hyphens")]
pub struct InvalidSubdomain(String);

impl FromStr for Subdomain {
    type Err = InvalidSubdomain;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let valid = (4..=63).contains(&s.len())
            && s.chars().all(allowed)
            && !s.starts_with('-')
            && !s.ends_with('-');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidSubdomain(s.to_owned()))
        }
    }
}

impl Subdomain {
    /// Parses `LT_SUBDOMAIN`, where an empty value means "none".
    pub fn parse_optional(value: &str) -> Result<Option<Self>, InvalidSubdomain> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        value.parse().map(Some)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subdomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a tunnel configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid LT_HOST {0:?}: expected an http:// or https:// URL with a host")]
    Server(String),
}

/// Where to open the tunnel and where its connections go.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    server: Url,
    subdomain: Option<Subdomain>,
    destination: Destination,
}

impl TunnelConfig {
    /// `server` is the tunnel server's base URL (`LT_HOST`).
    pub fn new(
        server: &str,
        subdomain: Option<Subdomain>,
        destination: Destination,
    ) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::Server(server.to_owned());
        let url = Url::parse(server.trim()).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid());
        }
        Ok(Self {
            server: url,
            subdomain,
            destination,
        })
    }

    pub fn server(&self) -> &Url {
        &self.server
    }

    pub fn subdomain(&self) -> Option<&Subdomain> {
        self.subdomain.as_ref()
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }
}

/// Maps a wildcard listening address to the loopback address of its family.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// Keeps the tunnel open until `shutdown` is cancelled, passing the current
/// public URL to `publish` each time it changes (`None` while there is none).
pub async fn run(
    config: TunnelConfig,
    publish: impl Fn(Option<String>) + Send,
    shutdown: CancellationToken,
) {
    let client = match registration::http_client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the tunnel cannot start: no HTTP client");
            return;
        }
    };
    let (first, longest) = REGISTER_BACKOFF;
    let mut backoff = Backoff::new(first, longest);
    tracing::info!(server = %config.server, "opening the public tunnel");
    while !shutdown.is_cancelled() {
        let registered = tokio::select! {
            result = registration::register(&client, &config) => result,
            () = shutdown.cancelled() => break,
        };
        match registered {
            Ok(registration) => {
                let url = registration.url.clone();
                let announce = || {
                    tracing::info!(url = %url, "public URL: {url}");
                    publish(Some(url.clone()));
                };
                let end =
                    pool::serve(&registration, &config.destination, &shutdown, announce).await;
                publish(None);
                match end {
                    PoolEnd::Shutdown => break,
                    PoolEnd::Lost { served } => {
                        if served {
                            backoff.reset();
                        }
                        tracing::warn!(url = %registration.url, "tunnel lost; registering again");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "tunnel registration failed"),
        }
        let delay = backoff.next_delay();
        tracing::info!(retry_in = ?delay, "waiting before the next tunnel registration");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => break,
        }
    }
    publish(None);
    tracing::info!("public tunnel closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_follow_the_server_rule() {
        for ok in ["abcd", "my-dispatch", "a1b2", &"x".repeat(63)] {
            assert!(ok.parse::<Subdomain>().is_ok(), "{ok}");
        }
        for bad in [
            "abc",
            "-abcd",
            "abcd-",
            "ABCD",
            "ab/cd",
            "ab?cd",
            &"x".repeat(64),
        ] {
            assert!(bad.parse::<Subdomain>().is_err(), "{bad}");
        }
        assert_eq!(Subdomain::parse_optional("  ").unwrap(), None);
    }

    #[test]
    fn server_must_be_an_http_url() {
        let local = Destination::dial("0.0.0.0:3000".parse().unwrap());
        assert!(TunnelConfig::new("localtunnel.me", None, local.clone()).is_err());
        assert!(TunnelConfig::new("ftp://localtunnel.me", None, local.clone()).is_err());
        let config = TunnelConfig::new("https://localtunnel.me", None, local).unwrap();
        assert!(
            matches!(config.destination(), Destination::Dial(addr) if *addr == "127.0.0.1:3000".parse().unwrap())
        );
    }
}
