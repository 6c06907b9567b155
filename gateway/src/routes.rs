//! The route table: one declaration per HTTP and WebSocket route (method,
//! path pattern, who may call it, handler). The dispatcher
//! ([`crate::router::dispatch`]) routes every request through [`ROUTES`];
//! the tests walk it (every authenticated route answers 401 without a
//! credential) and docs/protocol.md's route table is generated from it
//! ([`markdown_table`], checked by a test).
//!
//! A route is added here and nowhere else: a line in [`ROUTES`] naming its
//! handler, a function of the module that owns the feature.

use std::sync::Arc;

use futures::future::BoxFuture;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use crate::error::{ApiError, json_response};
use crate::protocol::auth::Health;
use crate::router::ApiRequest;
use crate::state::AppState;
use crate::{api, conversations, egress, push, usage};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Anyone who reaches the gateway (under the Host and Origin checks).
    Public,
    /// A holder of the key or of a login cookie (docs/protocol.md,
    /// Authentication); a wrong credential spends the failure budget.
    Authenticated,
    /// The holder of one share link's cookie, for that share's routes only
    /// (`/api/shares/{share}...`, [`crate::shares::http::authenticate`]); a
    /// forged cookie spends the failure budget. It opens no other route.
    ShareViewer,
}

impl Audience {
    /// The audience's name in the docs' table.
    pub fn describe(self) -> &'static str {
        match self {
            Audience::Public => "public",
            Audience::Authenticated => "authenticated",
            Audience::ShareViewer => "share viewer (that share's cookie)",
        }
    }
}

/// Answers one routed request; its path parameters are in
/// [`ApiRequest::param`].
pub type Handler = fn(Arc<AppState>, ApiRequest) -> BoxFuture<'static, Response>;

/// One route.
#[derive(Clone, Copy)]
pub struct Route {
    /// `GET` routes also answer `HEAD`.
    pub method: &'static str,
    /// `{name}` stands for one non-empty path segment.
    pub path: &'static str,
    pub audience: Audience,
    /// Whether it is a WebSocket upgrade.
    pub websocket: bool,
    /// Whether its handler reads the request body itself, as it arrives
    /// ([`ApiRequest::body_stream`]), rather than collected up to
    /// [`crate::router::MAX_BODY`].
    pub streamed_body: bool,
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("audience", &self.audience)
            .field("websocket", &self.websocket)
            .finish_non_exhaustive()
    }
}

/// What a handler's body may give: a response, or a response or an error.
pub trait Answer {
    fn into_answer(self) -> Response;
}

impl Answer for Response {
    fn into_answer(self) -> Response {
        self
    }
}

impl Answer for Result<Response, ApiError> {
    fn into_answer(self) -> Response {
        self.unwrap_or_else(ApiError::into_response)
    }
}

/// A [`Handler`] from a body that sees the state and the request as
/// `&Arc<AppState>` and `&mut ApiRequest` under the names given.
macro_rules! handler {
    (|$state:ident, $request:ident| $body:expr) => {{
        fn handle(state: Arc<AppState>, mut request: ApiRequest) -> BoxFuture<'static, Response> {
            Box::pin(async move {
                #[allow(unused_variables)]
                let ($state, $request) = (&state, &mut request);
                Answer::into_answer($body)
            })
        }
        handle as Handler
    }};
}

const fn http(
    method: &'static str,
    path: &'static str,
    audience: Audience,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        audience,
        websocket: false,
        streamed_body: false,
        handler,
    }
}

/// An HTTP route whose handler streams the request body.
const fn streamed(
    method: &'static str,
    path: &'static str,
    audience: Audience,
    handler: Handler,
) -> Route {
    Route {
        streamed_body: true,
        ..http(method, path, audience, handler)
    }
}

const fn websocket(path: &'static str, audience: Audience, handler: Handler) -> Route {
    Route {
        method: "GET",
        path,
        audience,
        websocket: true,
        streamed_body: false,
        handler,
    }
}

use Audience::{Authenticated, Public, ShareViewer};

/// Every route of the gateway. The first match wins, so a literal segment
/// comes before a `{name}` in the same place. A WebSocket route is a `GET`
/// upgrade.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    http("GET",    "/healthz",                          Public,        handler!(|_s, _r| json_response(StatusCode::OK, &Health::new("ok")))),
    http("GET",    "/readyz",                           Public,        handler!(|s, _r| api::ready(s).await)),
    http("GET",    "/public-url",                       Public,        handler!(|s, _r| api::public_url(s))),
    http("POST",   "/api/login",                        Public,        handler!(|s, r| api::login(s, r).await)),
    http("POST",   "/api/logout",                       Authenticated, handler!(|s, r| api::logout(s, r))),
    http("GET",    "/api/auth",                         Public,        handler!(|s, r| api::auth_status(s, r))),
    http("GET",    "/api/sessions",                     Authenticated, handler!(|s, r| api::list(s, r).await)),
    http("POST",   "/api/sessions",                     Authenticated, handler!(|s, r| api::create(s, r).await)),
    http("GET",    "/api/sessions/{id}",                Authenticated, handler!(|s, r| api::get(s, r).await)),
    http("PATCH",  "/api/sessions/{id}",                Authenticated, handler!(|s, r| api::rename(s, r).await)),
    http("DELETE", "/api/sessions/{id}",                Authenticated, handler!(|s, r| api::end(s, r).await)),
    http("GET",    "/api/sessions/{id}/egress",         Authenticated, handler!(|s, r| egress_ledger(s, r).await)),
    http("GET",    "/api/sessions/{id}/files",          Authenticated, handler!(|s, r| crate::files::list(s, r).await)),
    http("GET",    "/api/sessions/{id}/files/content",  Authenticated, handler!(|s, r| crate::files::download(s, r).await)),
    streamed("PUT","/api/sessions/{id}/files/content",  Authenticated, handler!(|s, r| crate::files::upload(s, r).await)),
    http("GET",    "/api/sessions/{id}/shares",         Authenticated, handler!(|s, r| crate::shares::http::list(s, r).await)),
    http("POST",   "/api/sessions/{id}/shares",         Authenticated, handler!(|s, r| crate::shares::http::create(s, r).await)),
    http("DELETE", "/api/sessions/{id}/shares/{share}", Authenticated, handler!(|s, r| crate::shares::http::revoke(s, r).await)),
    http("POST",   "/api/shares/{share}/open",          Public,        handler!(|s, r| crate::shares::http::open(s, r).await)),
    http("GET",    "/api/shares/{share}",               ShareViewer,   handler!(|s, r| crate::shares::http::page(s, r).await)),
    websocket(     "/api/shares/{share}/terminal",      ShareViewer,   handler!(|s, r| crate::shares::http::upgrade_terminal(s, r).await)),
    websocket(     "/ws/sessions/{id}",                 Authenticated, handler!(|s, r| api::upgrade_terminal(s, r))),
    websocket(     "/ws/events",                        Authenticated, handler!(|s, r| api::upgrade_events(s, r))),
    http("GET",    "/metrics",                          Authenticated, handler!(|s, _r| s.metrics.serve(&s.broker).await)),
    http("GET",    "/api/conversations",                Authenticated, handler!(|s, r| conversations::list(s, r).await)),
    http("GET",    "/api/conversations/events",         Authenticated, handler!(|s, r| conversations::feed(s, r).await)),
    http("GET",    "/api/conversations/{id}",           Authenticated, handler!(|s, r| conversations::get(s, r).await)),
    http("GET",    "/api/conversations/{id}/messages",  Authenticated, handler!(|s, r| conversations::messages(s, r).await)),
    http("GET",    "/api/conversations/{id}/export.md", Authenticated, handler!(|s, r| conversations::export(s, r).await)),
    http("GET",    "/api/search",                       Authenticated, handler!(|s, r| conversations::search(s, r).await)),
    http("GET",    usage::USAGE_PATH,                   Authenticated, handler!(|s, r| usage_report(s, r).await)),
    http("GET",    usage::CSV_PATH,                     Authenticated, handler!(|s, r| usage_report(s, r).await)),
    http("GET",    "/api/push/key",                     Authenticated, handler!(|s, _r| push::key(s))),
    http("POST",   "/api/push/subscriptions",           Authenticated, handler!(|s, r| push::subscribe(s, r))),
    http("DELETE", "/api/push/subscriptions",           Authenticated, handler!(|s, r| push::unsubscribe(s, r))),
];

/// Paths under these prefixes that match no route still require a
/// credential before the answer (404 or 405) says so: without one, nothing
/// tells which API paths exist.
pub const PROTECTED_PREFIXES: &[&str] = &["/api", "/ws", "/metrics"];

async fn egress_ledger(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = api::session_id(request.param("id"))?;
    egress::serve_ledger(state, request, id).await
}

async fn usage_report(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    usage::handle(state, request)
        .await
        .unwrap_or_else(|| Err(ApiError::not_found("no such endpoint")))
}

/// How a request's method and path meet the table.
#[derive(Debug)]
pub enum Found {
    /// A route, with the path's parameters by name.
    Route(&'static Route, Vec<(&'static str, String)>),
    /// The path is a route's, the method is not: 405 (after the strictest
    /// audience among the path's routes is satisfied).
    OtherMethod(Audience),
    /// No route has this path.
    Nothing,
}

/// Looks a request up in [`ROUTES`].
pub fn find(method: &Method, path: &str) -> Found {
    let mut other_method = None;
    for route in ROUTES {
        let Some(params) = pattern_params(route.path, path) else {
            continue;
        };
        let method_matches =
            route.method == method.as_str() || (route.method == "GET" && method == Method::HEAD);
        if method_matches {
            return Found::Route(route, params);
        }
        if other_method != Some(Audience::Authenticated) {
            other_method = Some(route.audience);
        }
    }
    other_method.map_or(Found::Nothing, Found::OtherMethod)
}

/// Whether a path that matches no route lies where a credential is required.
pub fn protected_namespace(path: &str) -> bool {
    PROTECTED_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The parameters of `path` under `pattern` (`{name}` segments), or `None`
/// when it does not match.
pub fn pattern_params(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut a = pattern.split('/');
    let mut b = path.split('/');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(s)) if p.starts_with('{') && !s.is_empty() => {
                params.push((
                    p.trim_start_matches('{').trim_end_matches('}'),
                    s.to_owned(),
                ));
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

/// docs/protocol.md's route table.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| method and path | who may call it | kind |\n| --- | --- | --- |\n");
    for route in ROUTES {
        let kind = if route.websocket { "WebSocket" } else { "HTTP" };
        table.push_str(&format!(
            "| `{} {}` | {} | {kind} |\n",
            route.method,
            route.path,
            route.audience.describe()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let id = |path| pattern_params("/api/sessions/{id}", path);
        assert_eq!(
            id("/api/sessions/abc"),
            Some(vec![("id", "abc".to_owned())])
        );
        assert_eq!(id("/api/sessions/"), None);
        assert_eq!(id("/api/sessions/a/b"), None);
        assert!(protected_namespace("/api/sessions"));
        assert!(protected_namespace("/ws/events"));
        assert!(protected_namespace("/api"));
        assert!(!protected_namespace("/apiary"));
        assert!(!protected_namespace("/"));
    }

    #[test]
    fn lookups() {
        let route = |method: Method, path| match find(&method, path) {
            Found::Route(route, _) => Some((route.path, route.audience)),
            _ => None,
        };
        assert_eq!(
            route(Method::POST, "/api/login"),
            Some(("/api/login", Public))
        );
        assert_eq!(route(Method::HEAD, "/healthz"), Some(("/healthz", Public)));
        assert_eq!(
            route(Method::GET, "/api/conversations/events"),
            Some(("/api/conversations/events", Authenticated))
        );
        assert!(matches!(
            find(&Method::PUT, "/api/sessions/x"),
            Found::OtherMethod(Authenticated)
        ));
        assert!(matches!(
            find(&Method::POST, "/healthz"),
            Found::OtherMethod(Public)
        ));
        assert!(matches!(find(&Method::GET, "/api/nothing"), Found::Nothing));
    }

    #[test]
    fn every_route_is_declared_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[..i] {
                assert!((a.method, a.path) != (b.method, b.path), "{a:?} twice");
            }
            assert!(a.audience == Public || protected_namespace(a.path), "{a:?}");
        }
    }
}
