//! The share routes (docs/protocol.md, Share links): the owner's create,
//! list and revoke; the public exchange of a link's secret for the share's
//! cookie (a wrong secret spends the client's failure budget, as a wrong
//! key does); and, for the holder of that cookie only, the page's data and
//! the read-only terminal socket. [`authenticate`] is the dispatcher's
//! check for the share viewer's routes.

use std::sync::Arc;
use std::time::Duration;

use dispatch_proto::v1::{GetSessionRequest, ListSessionsRequest, Session, SessionStatus};
use tonic::Code;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::secret;
use super::{Link, MIN_TTL_SECS};
use crate::api::session_id;
use crate::auth::Credential;
use crate::error::{ApiError, empty_response, json_response};
use crate::protocol::shares::{CreateShare, CreatedShare, OpenShare, ShareList, SharedView};
use crate::router::ApiRequest;
use crate::state::AppState;
use crate::terminal::TerminalRequest;

/// The answer to a secret or cookie that opens no share.
const INVALID_LINK: &str = "invalid or expired share link";

/// `POST /api/sessions/{id}/shares`.
pub async fn create(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = session_id(request.param("id"))?;
    let body: CreateShare = request.json()?;
    let ttl = lifetime(state, body.expires_in_secs)?;
    match session_state(state, request, &id).await? {
        Liveness::Running(_) => {}
        Liveness::Ended => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "the session has ended; there is nothing to share",
            ));
        }
        Liveness::Missing => return Err(ApiError::not_found("no such session")),
    }
    forget_ended_sessions(state, request).await;
    let (share, secret) = state.shares.create(&state.auth, &id, ttl)?;
    tracing::info!(share = %share.id, session = %id, "share link created");
    let path = format!("/share#{}.{secret}", share.id);
    json(StatusCode::CREATED, &CreatedShare { share, path })
}

/// The lifetime asked for, within `MIN_TTL_SECS..=SHARE_MAX_TTL_SECS`.
fn lifetime(state: &AppState, asked: Option<u64>) -> Result<Duration, ApiError> {
    let max = state.shares.config().share_max_ttl_secs;
    let secs = asked.unwrap_or(max);
    if !(MIN_TTL_SECS..=max).contains(&secs) {
        return Err(ApiError::bad_request(format!(
            "expiresInSecs must be between {MIN_TTL_SECS} and {max} (SHARE_MAX_TTL_SECS)"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// `GET /api/sessions/{id}/shares`.
pub async fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = session_id(request.param("id"))?;
    if let Liveness::Missing = session_state(state, request, &id).await? {
        return Err(ApiError::not_found("no such session"));
    }
    json(
        StatusCode::OK,
        &ShareList {
            shares: state.shares.list(&id),
        },
    )
}

/// `DELETE /api/sessions/{id}/shares/{share}`: its viewers' sockets close
/// with 4401 at once.
pub async fn revoke(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = session_id(request.param("id"))?;
    let share = request.param("share");
    if !secret::valid_id(share) || !state.shares.revoke(&state.auth, &id, share) {
        return Err(ApiError::not_found("no such share link"));
    }
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// `POST /api/shares/{share}/open`: the link's secret (from its fragment)
/// for the share's cookie, and the page's data.
pub async fn open(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    if let Some(refusal) = state.limiter.exhausted(request.client_ip) {
        return Err(refusal);
    }
    let body: OpenShare = request.json()?;
    let share = request.param("share");
    let link = secret::valid_id(share)
        .then(|| state.shares.get(share))
        .flatten()
        .filter(|link| secret::secret_matches(&state.auth, share, &body.secret, &link.verifier));
    let Some(link) = link else {
        state
            .limiter
            .record_failure(request.client_ip, "share secret", &request.path);
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, INVALID_LINK));
    };
    let session = running(state, request, &link).await?;
    tracing::info!(share = %link.id, client = %request.client_ip, "share link opened");
    let mut response = json(StatusCode::OK, &view(&link, &session))?;
    let cookie = secret::set_cookie(
        &secret::cookie_value(&state.auth, &link.id),
        &link.id,
        link.secs_left(),
        request.secure,
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `GET /api/shares/{share}`: the share page's data.
pub async fn page(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let link = viewed_link(state, request)?;
    let session = running(state, request, &link).await?;
    json(StatusCode::OK, &view(&link, &session))
}

/// `GET /api/shares/{share}/terminal`: the read-only terminal WebSocket,
/// with compressed output (`dispatch.deflate-raw`) when offered and allowed.
pub async fn upgrade_terminal(
    state: &Arc<AppState>,
    request: &mut ApiRequest,
) -> Result<Response, ApiError> {
    let Some(mut ws) = request.ws.take() else {
        return Err(ApiError::bad_request("expected a WebSocket upgrade"));
    };
    let link = viewed_link(state, request)?;
    running(state, request, &link).await?;
    let terminal = TerminalRequest {
        session_id: link.session_id.clone(),
        cols: 0,
        rows: 0,
        credential: request.credential.clone().expect("authenticated"),
        request_id: request.id.clone(),
    };
    let deflate = ws.negotiate_deflate(state.config.terminal_compression);
    let state = state.clone();
    Ok(ws.accept(move |socket| {
        let sockets = state.sockets.clone();
        let viewer = state.shares.viewer(&link.id);
        sockets.track_future(async move {
            crate::terminal::run_with(socket, state, terminal, deflate).await;
            drop(viewer);
        })
    }))
}

/// The dispatcher's check for a share viewer's route: the share cookie of
/// the share the path names. A forged cookie spends the client's failure
/// budget; a genuine one of a revoked or expired share does not.
pub fn authenticate(state: &AppState, request: &ApiRequest) -> Result<Credential, ApiError> {
    let presented = request
        .header(header::COOKIE)
        .and_then(|c| crate::auth::cookie_value(c, secret::COOKIE_NAME));
    let Some(presented) = presented else {
        return Err(ApiError::unauthenticated());
    };
    if let Some(refusal) = state.limiter.exhausted(request.client_ip) {
        return Err(refusal);
    }
    let share = share_in_path(&request.path).filter(|id| secret::valid_id(id));
    let genuine = share.filter(|id| secret::cookie_matches(&state.auth, id, presented));
    let Some(share) = genuine else {
        state
            .limiter
            .record_failure(request.client_ip, "share cookie", &request.path);
        return Err(ApiError::unauthenticated());
    };
    match state.shares.get(share) {
        Some(link) => Ok(link.credential()),
        None => Err(ApiError::unauthenticated()),
    }
}

/// The share id of a share viewer's path (`/api/shares/<id>[/...]`).
fn share_in_path(path: &str) -> Option<&str> {
    path.strip_prefix("/api/shares/")?.split('/').next()
}

/// The link of an authenticated share viewer's request.
fn viewed_link(state: &AppState, request: &ApiRequest) -> Result<Link, ApiError> {
    match &request.credential {
        Some(Credential::Share { share, .. }) => state
            .shares
            .get(share)
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, INVALID_LINK)),
        _ => Err(ApiError::unauthenticated()),
    }
}

/// What the share page shows.
fn view(link: &Link, session: &Session) -> SharedView {
    SharedView {
        share_id: link.id.clone(),
        session_name: session.name.clone(),
        host: host_name(),
        read_only: true,
        expires_at: link.expires_at_ms,
        socket: format!("{}/terminal", secret::share_path(&link.id)),
    }
}

/// This machine's name, as the share page names whose session it is.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "this machine".to_owned())
}

/// Whether a session runs, has ended, or is unknown to the broker.
enum Liveness {
    Running(Box<Session>),
    Ended,
    Missing,
}

/// The session's liveness; the links of an ended or unknown session are
/// forgotten on the way.
async fn session_state(
    state: &AppState,
    request: &ApiRequest,
    id: &str,
) -> Result<Liveness, ApiError> {
    let call = state
        .broker
        .request(GetSessionRequest { id: id.to_owned() }, &request.id);
    let liveness = match state.broker.sessions().get_session(call).await {
        Ok(session) if session.get_ref().status == SessionStatus::Running as i32 => {
            return Ok(Liveness::Running(Box::new(session.into_inner())));
        }
        Ok(_) => Liveness::Ended,
        Err(status) if status.code() == Code::NotFound => Liveness::Missing,
        Err(status) => return Err(ApiError::from_status(&status)),
    };
    state.shares.forget_session(&state.auth, id);
    Ok(liveness)
}

/// The running session behind a link: 410 once it has ended.
async fn running(state: &AppState, request: &ApiRequest, link: &Link) -> Result<Session, ApiError> {
    match session_state(state, request, &link.session_id).await? {
        Liveness::Running(session) => Ok(*session),
        Liveness::Ended | Liveness::Missing => Err(ApiError::new(
            StatusCode::GONE,
            "the shared session has ended",
        )),
    }
}

/// Forgets the links of every session that no longer runs.
async fn forget_ended_sessions(state: &AppState, request: &ApiRequest) {
    let call = state.broker.request(ListSessionsRequest {}, &request.id);
    if let Ok(list) = state.broker.sessions().list_sessions(call).await {
        let running = list
            .get_ref()
            .sessions
            .iter()
            .filter(|s| s.status == SessionStatus::Running as i32)
            .map(|s| s.id.clone())
            .collect();
        state.shares.retain_sessions(&state.auth, &running);
    }
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Result<Response, ApiError> {
    let value = serde_json::to_value(body).expect("plain data");
    Ok(json_response(status, &value))
}
