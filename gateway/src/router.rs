//! The dispatcher: one warp filter collects each request into an
//! [`ApiRequest`], then plain Rust decides. First of all, the `Host` must be
//! one the gateway answers to (421 otherwise, [`crate::origin`]); WebSocket
//! upgrades and state-changing requests also pass the Origin check. Then the
//! route table ([`crate::routes`]) decides: a route's audience says whether a
//! credential is required before anything else is looked at (a wrong one
//! spends the client's failure budget, [`crate::ratelimit`], as a wrong
//! login does), and its handler answers. Paths of no route are the web UI's,
//! but under the API's prefixes, which require a credential before saying
//! 404 or 405.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tracing::Instrument;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Buf, Filter};

use crate::auth::{Credential, Outcome};
use crate::broker::RequestId;
use crate::config::TrustProxy;
use crate::error::ApiError;
use crate::routes::{Audience, Found};
use crate::state::AppState;

/// Largest request body accepted (64 KiB); larger gets 413.
pub const MAX_BODY: usize = 64 * 1024;

/// A request body as it arrives, for routes that stream it.
pub type BodyStream = futures::stream::BoxStream<'static, Result<Bytes, warp::Error>>;

/// The client address that a connection was accepted from (set by the server loop).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// A request, collected for the dispatcher and the route hooks.
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The unread body of a route that streams it
    /// ([`crate::routes::Route::streamed_body`]); `body` is then empty. In a
    /// mutex only so that `&ApiRequest` stays `Send`.
    pub body_stream: std::sync::Mutex<Option<BodyStream>>,
    /// Present when the request is a WebSocket upgrade.
    pub ws: Option<crate::ws::WsUpgrade>,
    /// The client: the peer, or what a trusted proxy's `X-Forwarded-For` says.
    pub client_ip: IpAddr,
    /// Whether the client reached us over HTTPS through a trusted proxy.
    pub secure: bool,
    /// Whether the peer is a trusted proxy (its `X-Forwarded-*` headers count).
    pub proxied: bool,
    pub id: RequestId,
    /// Set once the request is authenticated.
    pub credential: Option<Credential>,
    /// The path's parameters (`{id}` of the route's pattern), by name.
    pub params: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    /// A path parameter of the route (`""` when the pattern has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, value)| value)
    }

    /// A header as text.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter (not percent-decoded beyond `+`).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// The body as JSON; an empty body is `{}`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
    }
}

/// The whole gateway as one warp filter.
pub fn filter(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::any()
        .map(move || state.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::ext::optional::<crate::ws::PendingUpgrade>())
        .and(warp::body::stream())
        .then(collect)
        .recover(|_| async {
            Ok::<_, Infallible>(ApiError::not_found("no such endpoint").into_response())
        })
        .unify()
}

#[allow(clippy::too_many_arguments)]
async fn collect(
    state: Arc<AppState>,
    method: Method,
    path: warp::path::FullPath,
    query: Option<String>,
    headers: HeaderMap,
    peer: Option<PeerAddr>,
    pending: Option<crate::ws::PendingUpgrade>,
    body: impl Stream<Item = Result<impl Buf + Send + 'static, warp::Error>> + Unpin + Send + 'static,
) -> Response {
    let id = RequestId::generate();
    let ws = crate::ws::WsUpgrade::from_request(&method, &headers, pending);
    let peer_ip = peer.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |p| p.0.ip());
    let trusted = state.config.trust_proxy.trusts(peer_ip);
    let client_ip = if trusted {
        forwarded_for(&headers, &state.config.trust_proxy).unwrap_or(peer_ip)
    } else {
        peer_ip
    };
    let secure = trusted
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("https")
            });
    let span =
        tracing::info_span!("http", request_id = %id, method = %method, path = path.as_str());
    respond(
        state, method, path, query, headers, ws, body, client_ip, secure, trusted, id,
    )
    .instrument(span)
    .await
}

#[allow(clippy::too_many_arguments)]
async fn respond(
    state: Arc<AppState>,
    method: Method,
    path: warp::path::FullPath,
    query: Option<String>,
    headers: HeaderMap,
    ws: Option<crate::ws::WsUpgrade>,
    body: impl Stream<Item = Result<impl Buf + Send + 'static, warp::Error>> + Unpin + Send + 'static,
    client_ip: IpAddr,
    secure: bool,
    trusted: bool,
    id: RequestId,
) -> Response {
    let started = std::time::Instant::now();
    let streamed = ws.is_none() && streams_body(&method, path.as_str());
    let (body, body_stream) = if ws.is_some() || streamed {
        (Ok(Bytes::new()), streamed.then(|| stream_body(body)))
    } else {
        (read_body(body).await, None)
    };
    let mut request = ApiRequest {
        method,
        path: path.as_str().to_string(),
        query,
        headers,
        body: Bytes::new(),
        body_stream: std::sync::Mutex::new(body_stream),
        ws,
        client_ip,
        secure,
        proxied: trusted,
        id: id.clone(),
        credential: None,
        params: Vec::new(),
    };
    let mut response = match body {
        Ok(body) => {
            request.body = body;
            dispatch(&state, request).await
        }
        Err(err) => err.into_response(),
    };
    let status = response.status();
    state.metrics.observe_response(status, started.elapsed());
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        headers.insert("x-request-id", value);
    }
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), "answered");
    } else {
        tracing::debug!(status = status.as_u16(), "answered");
    }
    response
}

/// The client named by a trusted proxy's `X-Forwarded-For`: walking from the
/// right (each proxy appends the address it was reached from), the first
/// address that is not itself a trusted proxy. Entries to its left were
/// written by the client and are never believed. With `TRUST_PROXY=true`
/// only the peer is a proxy, so the rightmost entry is the client. `None`
/// (the peer address is used) when the header is absent or an entry that
/// must be read is not an address.
fn forwarded_for(headers: &HeaderMap, trust: &TrustProxy) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut furthest_proxy = None;
    for entry in entries.iter().rev() {
        let ip = forwarded_address(entry)?;
        if *trust == TrustProxy::All || !trust.trusts(ip) {
            return Some(ip);
        }
        furthest_proxy = Some(ip);
    }
    furthest_proxy
}

/// An `X-Forwarded-For` entry as an address (`1.2.3.4`, `::1`, `[::1]:80`, `1.2.3.4:80`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
}

/// Whether the request's route streams its body.
fn streams_body(method: &Method, path: &str) -> bool {
    matches!(crate::routes::find(method, path), Found::Route(route, _) if route.streamed_body)
}

fn stream_body(
    body: impl Stream<Item = Result<impl Buf + Send + 'static, warp::Error>> + Unpin + Send + 'static,
) -> BodyStream {
    body.map(|chunk| chunk.map(|mut buf| buf.copy_to_bytes(buf.remaining())))
        .boxed()
}

async fn read_body(
    mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
) -> Result<Bytes, ApiError> {
    let mut collected = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if collected.len() + chunk.remaining() > MAX_BODY {
            return Err(ApiError::too_large(MAX_BODY));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(collected.freeze())
}

/// Routes one collected request.
pub async fn dispatch(state: &Arc<AppState>, mut request: ApiRequest) -> Response {
    let path = request.path.clone();
    let method = request.method.clone();
    if !host_allowed(state, &request) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "this gateway does not answer to that Host; add the name to PUBLIC_HOSTS",
        )
        .into_response();
    }
    let state_changing = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if (request.ws.is_some() || state_changing) && !origin_allowed(state, &request) {
        return ApiError::origin().into_response();
    }
    let found = crate::routes::find(&method, &path);
    let audience = match &found {
        Found::Route(route, _) => route.audience,
        Found::OtherMethod(audience) => *audience,
        Found::Nothing if crate::routes::protected_namespace(&path) => Audience::Authenticated,
        Found::Nothing => {
            return match method {
                Method::GET | Method::HEAD => crate::assets::serve(&path, &request.headers),
                _ => ApiError::method_not_allowed().into_response(),
            };
        }
    };
    if audience == Audience::Authenticated {
        match authenticate(state, &request) {
            Ok(credential) => request.credential = Some(credential),
            Err(error) => return refuse_credential(error, &request),
        }
    }
    if audience == Audience::ShareViewer {
        match crate::shares::http::authenticate(state, &request) {
            Ok(credential) => request.credential = Some(credential),
            Err(error) => return error.into_response(),
        }
    }
    match found {
        Found::Route(route, params) => {
            request.params = params;
            (route.handler)(state.clone(), request).await
        }
        Found::OtherMethod(_) => ApiError::method_not_allowed().into_response(),
        Found::Nothing => ApiError::not_found("no such endpoint").into_response(),
    }
}

/// The request's credential; a wrong one spends the client's failure budget,
/// and a client whose budget is spent gets 429 before its credential is read.
pub(crate) fn authenticate(state: &AppState, request: &ApiRequest) -> Result<Credential, ApiError> {
    let cookie = request.header(header::COOKIE);
    let authorization = request.header(header::AUTHORIZATION);
    if crate::auth::presents_credential(cookie, authorization)
        && let Some(refusal) = state.limiter.exhausted(request.client_ip)
    {
        return Err(refusal);
    }
    match state.auth.authenticate(cookie, authorization) {
        Outcome::Accepted(credential) => Ok(credential),
        Outcome::Wrong(what) => {
            state
                .limiter
                .record_failure(request.client_ip, what, &request.path);
            Err(ApiError::unauthenticated())
        }
        Outcome::Absent | Outcome::Stale => Err(ApiError::unauthenticated()),
    }
}

/// The answer to a refused credential. A 401 to a login cookie also clears
/// it, so that a browser holding a cookie from an earlier key (a restart
/// with a new generated key) spends one failure, not one per request.
fn refuse_credential(error: ApiError, request: &ApiRequest) -> Response {
    let refused = error.status == StatusCode::UNAUTHORIZED;
    let mut response = error.into_response();
    if refused {
        clear_refused_cookie(request, &mut response);
    }
    response
}

/// Clears the request's login cookie, which was just refused, unless the
/// request also carried a bearer key (the cookie was then not what failed).
pub(crate) fn clear_refused_cookie(request: &ApiRequest, response: &mut Response) {
    let refused_cookie =
        !crate::auth::presents_credential(None, request.header(header::AUTHORIZATION))
            && crate::auth::presents_credential(request.header(header::COOKIE), None);
    if refused_cookie
        && let Ok(clear) = HeaderValue::from_str(&crate::auth::clear_cookie(request.secure))
    {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
}

/// Whether the request's `Host` (and a trusted proxy's `X-Forwarded-Host`)
/// is one the gateway answers to.
fn host_allowed(state: &AppState, request: &ApiRequest) -> bool {
    let public_url = state.public_url.get();
    let allows = |host| state.hosts.allows(host, public_url.as_deref());
    let forwarded = request
        .proxied
        .then(|| request.header("x-forwarded-host"))
        .flatten()
        .map(|h| h.split(',').next_back().unwrap_or_default());
    let allowed = allows(request.header(header::HOST)) && forwarded.is_none_or(|h| allows(Some(h)));
    if !allowed {
        let host = request.header(header::HOST).unwrap_or_default();
        let shown: String = host.chars().take(100).collect();
        tracing::warn!(client = %request.client_ip, host = %shown.escape_debug(), "request for an unknown Host refused");
    }
    allowed
}

fn origin_allowed(state: &AppState, request: &ApiRequest) -> bool {
    let host = request
        .proxied
        .then(|| request.header("x-forwarded-host"))
        .flatten()
        .or_else(|| request.header(header::HOST));
    state.origins.allows(request.header(header::ORIGIN), host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_read_from_the_right() {
        let client = |trust: &str, header: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", header.parse().unwrap());
            forwarded_for(&headers, &trust.parse().unwrap()).map(|ip| ip.to_string())
        };
        let ip = |s: &str| Some(s.to_string());
        assert_eq!(client("true", "6.6.6.6, 192.0.2.9"), ip("192.0.2.9"));
        let chain = "6.6.6.6, 192.0.2.9, 10.0.0.5";
        assert_eq!(client("10.0.0.5", chain), ip("192.0.2.9"));
        assert_eq!(client("true", chain), ip("10.0.0.5"));
        assert_eq!(client("loopback", "127.0.0.1"), ip("127.0.0.1"));
        assert_eq!(client("true", "[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(client("10.0.0.5", "192.0.2.9, unknown, 10.0.0.5"), None);
    }
}
