//! The connection limits of the HTTP server: their values (from the
//! configuration), the total and per-client connection slots, the 503 answer
//! to a refused connection, and throttled log lines for refusals and closes
//! (one a second per reason, so an attack cannot flood the log).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, TrustProxy};
use crate::metrics::{Metrics, OpenConnection};
use crate::protocol::errors::ErrorBody;

/// The limits every HTTP connection is served under.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub max_requests: u64,
    /// Largest WebSocket message a client may send.
    pub max_ws_message: usize,
    /// TCP_NOTSENT_LOWAT of accepted sockets (0: the kernel's default).
    pub tcp_notsent_lowat: u32,
    /// Peers exempt from the per-client cap (they speak for many clients).
    pub trust_proxy: TrustProxy,
}

impl ConnectionLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_connections: config.max_connections as usize,
            max_per_client: config.max_connections_per_client as usize,
            header_timeout: Duration::from_secs(config.http_header_timeout_secs),
            idle_timeout: Duration::from_secs(config.http_idle_timeout_secs),
            body_timeout: Duration::from_secs(config.http_body_timeout_secs),
            max_requests: config.http_max_requests_per_connection,
            max_ws_message: dispatch_proto::limits::max_input_bytes(
                config.broker_max_message_bytes,
            ),
            tcp_notsent_lowat: config.tcp_notsent_lowat_bytes,
            trust_proxy: config.trust_proxy.clone(),
        }
    }
}

/// Why a connection is refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `MAX_CONNECTIONS` are open.
    ServerFull,
    /// The client's address holds `MAX_CONNECTIONS_PER_CLIENT`.
    ClientFull,
}

impl Refusal {
    /// The metric label (one of `metrics::CONNECTION_REFUSALS`).
    fn reason(self) -> &'static str {
        match self {
            Self::ServerFull => "server_limit",
            Self::ClientFull => "client_limit",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::ServerFull => "too many connections; try again shortly",
            Self::ClientFull => "too many connections from this address; close some and retry",
        }
    }

    /// Counts the refusal in `metrics` and logs it (throttled).
    pub fn record(self, peer: IpAddr, limit: usize, metrics: &Metrics) {
        metrics.connection_refused(self.reason());
        if let Some(suppressed) = throttle(self.reason()) {
            tracing::warn!(
                %peer,
                limit,
                suppressed,
                "refused a connection: {}",
                self.message()
            );
        }
    }
}

/// Refused connections being answered at once; past this, more are closed
/// without an answer (an attack must not hold descriptors through refusals).
const MAX_ANSWERING: usize = 1024;

/// Answers a refused connection with 503 and closes it, without waiting
/// more than a second on the client.
pub async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    static ANSWERING: AtomicUsize = AtomicUsize::new(0);
    if ANSWERING.fetch_add(1, Ordering::AcqRel) >= MAX_ANSWERING {
        ANSWERING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    answer_refusal(&mut stream, refusal).await;
    ANSWERING.fetch_sub(1, Ordering::AcqRel);
}

async fn answer_refusal(stream: &mut TcpStream, refusal: Refusal) {
    let body = serde_json::to_string(&ErrorBody::new(refusal.message())).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the connection
        // before it has read the answer.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Why the gateway closed a connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    HeaderTimeout,
    IdleTimeout,
    BodyTimeout,
    KeepAliveLimit,
    Shutdown,
}

impl Closing {
    /// Counts the close in `metrics` (one of `metrics::CONNECTION_CLOSES`)
    /// and logs it (throttled).
    pub fn record(self, peer: IpAddr, metrics: &Metrics) {
        let reason = match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::KeepAliveLimit => "keep_alive_limit",
            Self::Shutdown => return,
        };
        metrics.connection_closed(reason);
        if self == Self::KeepAliveLimit {
            return;
        }
        if let Some(suppressed) = throttle(reason) {
            tracing::info!(%peer, suppressed, "closed a connection: {reason}");
        }
    }
}

/// Connection slots: a total cap and a cap per client address.
#[derive(Debug)]
pub struct Slots {
    total: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    max_per_client: usize,
    metrics: Metrics,
}

/// A connection's slots, given back on drop.
#[derive(Debug)]
pub struct Admission {
    _total: OwnedSemaphorePermit,
    _open: OpenConnection,
    client: Option<(Arc<Slots>, IpAddr)>,
}

impl Slots {
    pub fn new(limits: &ConnectionLimits, metrics: &Metrics) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(limits.max_connections)),
            per_client: Mutex::new(HashMap::new()),
            max_per_client: limits.max_per_client,
            metrics: metrics.clone(),
        })
    }

    /// Takes a slot for a connection from `client` (`None`: exempt from the
    /// per-client cap), or says why not.
    pub fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Admission, Refusal> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::ServerFull)?;
        let client = match client {
            None => None,
            Some(ip) => {
                let key = client_key(ip);
                let mut counts = crate::sync::lock(&self.per_client);
                let count = counts.entry(key).or_default();
                if *count >= self.max_per_client {
                    return Err(Refusal::ClientFull);
                }
                *count += 1;
                Some((self.clone(), key))
            }
        };
        Ok(Admission {
            _total: total,
            _open: self.metrics.open_connection(),
            client,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut counts = crate::sync::lock(&self.per_client);
        if let Some(count) = counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some((slots, key)) = self.client.take() {
            slots.release(key);
        }
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64
/// (one host usually holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Whether a log line for `reason` may be written now (at most one a second
/// per reason); if so, how many were suppressed since the last one.
fn throttle(reason: &'static str) -> Option<u64> {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    static LAST: LazyLock<Mutex<HashMap<&'static str, (u64, u64)>>> =
        LazyLock::new(Default::default);
    let now = START.elapsed().as_secs() + 1;
    let mut last = crate::sync::lock(&LAST);
    let (at, suppressed) = last.entry(reason).or_insert((0, 0));
    if *at == now {
        *suppressed += 1;
        return None;
    }
    *at = now;
    Some(std::mem::take(suppressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn slots_are_given_back() {
        let limits = ConnectionLimits {
            max_connections: 3,
            max_per_client: 2,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max_requests: 1,
            max_ws_message: 1,
            tcp_notsent_lowat: 0,
            trust_proxy: TrustProxy::None,
        };
        let slots = Slots::new(&limits, &Metrics::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = slots.admit(Some(ip)).unwrap();
        let _b = slots.admit(Some(ip)).unwrap();
        assert_eq!(slots.admit(Some(ip)).unwrap_err(), Refusal::ClientFull);
        let _c = slots.admit(None).unwrap();
        assert_eq!(slots.admit(None).unwrap_err(), Refusal::ServerFull);
        drop(a);
        assert!(slots.admit(Some(ip)).is_ok());
    }
}
