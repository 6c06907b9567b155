//! The egress proxy's listener and the life of one connection: request
//! head, decision (method, credentials, target, session, port, allowlist,
//! limits, address), connection upstream, then the tunnel, each step
//! recorded in the audit log, the counters and the session's ledger.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dispatch_proto::egress::EgressKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use super::Settings;
use super::address::{self, ResolveError};
use super::allowlist::{Match, Target};
use super::audit::{End, OpenTunnel, Record, Refusal, Refused};
use super::credentials;
use super::limits::SessionPermit;
use super::relay::{self, Traffic};
use super::request::{self, Head};
use crate::state::AppState;

/// What the proxy needs for every connection.
pub(super) struct Shared {
    pub settings: Settings,
    pub key: EgressKey,
    pub state: Arc<AppState>,
}

/// Accepts connections until shutdown, then waits (briefly) for the
/// tunnels, which close themselves on shutdown.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let shutdown = shared.state.shutdown.clone();
    let tasks = TaskTracker::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tasks.spawn(handle(shared.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(target: "dispatch::egress", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = shutdown.cancelled() => break,
        }
    }
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
}

/// Who asked for what, as far as known.
#[derive(Default)]
struct Attempt {
    session: Option<String>,
    target: Option<Target>,
}

/// A decided and connected tunnel.
struct Admitted {
    session: String,
    target: Target,
    upstream: TcpStream,
    _permit: SessionPermit,
}

async fn handle(shared: Arc<Shared>, mut stream: TcpStream) {
    let started = Instant::now();
    let _ = stream.set_nodelay(true);
    let Some(_connection) = shared.settings.limits.connection() else {
        let refused = Refused::new(
            Refusal::TotalLimit,
            format!("limit {}", shared.settings.max_tunnels),
        );
        return refuse(&shared, &mut stream, &Attempt::default(), &refused, started).await;
    };
    let mut attempt = Attempt::default();
    let head = match request::read_head(&mut stream, shared.settings.connect_timeout).await {
        Ok(head) => head,
        Err(refused) => return refuse(&shared, &mut stream, &attempt, &refused, started).await,
    };
    match admit(&shared, &head, &mut attempt).await {
        Ok(admitted) => tunnel(&shared, stream, admitted, &head.early, started).await,
        Err(refused) => refuse(&shared, &mut stream, &attempt, &refused, started).await,
    }
}

/// Decides on a request and connects upstream.
async fn admit(shared: &Shared, head: &Head, attempt: &mut Attempt) -> Result<Admitted, Refused> {
    let (session, target) = identify(shared, head, attempt).await?;
    let (matched, permit) = check_policy(&shared.settings, &session, &target)?;
    let upstream = reach(&shared.settings, &target, matched).await?;
    Ok(Admitted {
        session,
        target,
        upstream,
        _permit: permit,
    })
}

/// The running session and the target of a `CONNECT` request.
async fn identify(
    shared: &Shared,
    head: &Head,
    attempt: &mut Attempt,
) -> Result<(String, Target), Refused> {
    if head.method != "CONNECT" {
        let detail = format!("not {}", head.method);
        return Err(Refused::new(Refusal::Method, detail));
    }
    let session = credentials::authenticate(&shared.key, head.proxy_authorization.as_deref())?;
    attempt.session = Some(session.clone());
    let target = Target::parse(&head.target)
        .ok_or_else(|| Refused::new(Refusal::BadRequest, "the target must be host:port"))?;
    attempt.target = Some(target.clone());
    credentials::check_running(&shared.state.broker, &session).await?;
    Ok((session, target))
}

/// The port and host allowlists, then the session's tunnel limit.
fn check_policy(
    settings: &Settings,
    session: &str,
    target: &Target,
) -> Result<(Match, SessionPermit), Refused> {
    if !settings.ports.contains(&target.port) {
        let detail = format!("{} (allowed: {:?})", target.port, settings.ports);
        return Err(Refused::new(Refusal::PortNotAllowed, detail));
    }
    let matched = settings
        .allow
        .matches(target)
        .ok_or_else(|| Refused::new(Refusal::NotAllowlisted, target.host.clone()))?;
    let permit = settings.limits.session(session).ok_or_else(|| {
        let detail = format!("limit {}", settings.max_tunnels_per_session);
        Refused::new(Refusal::SessionLimit, detail)
    })?;
    Ok((matched, permit))
}

/// Resolves the target (within the connect timeout), vets its addresses
/// and connects to one.
async fn reach(settings: &Settings, target: &Target, matched: Match) -> Result<TcpStream, Refused> {
    let resolving = address::resolve(target, matched == Match::Exact);
    let addresses = tokio::time::timeout(settings.connect_timeout, resolving)
        .await
        .map_err(|_| {
            let why = format!("no answer within {} s", settings.connect_timeout.as_secs());
            resolve_refusal(target, ResolveError::Unresolvable(why))
        })?
        .map_err(|e| resolve_refusal(target, e))?;
    connect(&addresses, settings.connect_timeout).await
}

fn resolve_refusal(target: &Target, error: ResolveError) -> Refused {
    match error {
        ResolveError::Unresolvable(why) => {
            Refused::new(Refusal::Unresolvable, format!("{}: {why}", target.host))
        }
        ResolveError::NonPublic(ip, kind) => Refused::new(
            Refusal::NonPublicAddress,
            format!("{} is {ip} ({kind})", target.host),
        ),
    }
}

/// Connects to the first address that answers, all within `timeout`.
async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Refused> {
    let attempts = async {
        let mut last = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| "no address".to_owned(), |e| e.to_string()))
    };
    match tokio::time::timeout(timeout, attempts).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(why)) => Err(Refused::new(Refusal::UpstreamRefused, why)),
        Err(_) => Err(Refused::new(
            Refusal::ConnectTimeout,
            format!("after {} s", timeout.as_secs()),
        )),
    }
}

/// Answers the refusal and records it.
async fn refuse(
    shared: &Shared,
    stream: &mut TcpStream,
    attempt: &Attempt,
    refused: &Refused,
    started: Instant,
) {
    request::refuse(stream, refused).await;
    let session = attempt.session.as_deref().unwrap_or("");
    let (host, port) = attempt
        .target
        .as_ref()
        .map_or(("", 0), |t| (t.host.as_str(), t.port));
    if !session.is_empty() && !host.is_empty() {
        shared
            .state
            .egress
            .refused(session, host, port, refused.why.reason());
    }
    shared.state.metrics.egress().record(&Record {
        session,
        host,
        port,
        refused: Some(refused),
        duration: started.elapsed(),
        ..Record::default()
    });
}

/// Answers 200 and relays until the tunnel ends; then records it.
async fn tunnel(
    shared: &Shared,
    mut client: TcpStream,
    mut admitted: Admitted,
    early: &[u8],
    started: Instant,
) {
    let (session, host, port) = (
        admitted.session.as_str(),
        admitted.target.host.as_str(),
        admitted.target.port,
    );
    let ledger = &shared.state.egress;
    let traffic = Arc::new(Traffic::default());
    ledger.opened(session, host, port, &traffic);
    let end = match request::established(&mut client).await {
        Ok(()) => {
            let _open = OpenTunnel::new(shared.state.metrics.egress());
            relay::relay(
                &mut client,
                &mut admitted.upstream,
                early,
                shared.settings.idle,
                &shared.state.shutdown,
                &traffic,
            )
            .await
        }
        Err(_) => End::Closed,
    };
    ledger.closed(session, host, port, &traffic);
    let up = traffic.up.load(Ordering::Relaxed);
    let down = traffic.down.load(Ordering::Relaxed);
    shared.state.metrics.egress().record(&Record {
        session,
        host,
        port,
        refused: None,
        end: Some(end),
        bytes_up: up,
        bytes_down: down,
        duration: started.elapsed(),
    });
}
