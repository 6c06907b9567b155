//! The REST handlers and the WebSocket upgrades of docs/protocol.md:
//! login/logout, sessions (list, create, get, rename, end), readiness.

use std::sync::Arc;

use dispatch_proto::limits::{MAX_SESSION_NAME_CHARS, MAX_TERMINAL_DIMENSION, clamp_dimension};
use dispatch_proto::v1::{
    CreateSessionRequest, EndSessionRequest, GetSessionRequest, ListSessionsRequest,
    RenameSessionRequest,
};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::auth::{clear_cookie, login_cookie};
use crate::error::{ApiError, empty_response, json_response};
use crate::model;
use crate::protocol::auth::{Health, LoginRequest, PublicUrl};
use crate::protocol::sessions::{self as wire, SessionList};
use crate::router::ApiRequest;
use crate::state::AppState;
use crate::terminal::TerminalRequest;

/// `GET /readyz`.
pub async fn ready(state: &AppState) -> Response {
    match state.broker.ready().await {
        Ok(()) => json_response(StatusCode::OK, &Health::new("ready")),
        Err(reason) => {
            let mut error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason);
            error.retry_after = Some(2);
            error.into_response()
        }
    }
}

/// `POST /api/login`.
pub async fn login(state: &AppState, request: &ApiRequest) -> Response {
    if let Some(refusal) = state.limiter.refusal(request.client_ip) {
        return refusal;
    }
    let body: LoginRequest = match request.json() {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    if !state.auth.key_matches(&body.key) {
        state
            .limiter
            .record_failure(request.client_ip, "key", &request.path);
        return ApiError::new(StatusCode::UNAUTHORIZED, "invalid key").into_response();
    }
    state.limiter.succeed(request.client_ip);
    let (token, ttl) = state.auth.issue();
    tracing::info!(client = %request.client_ip, "login");
    state.metrics.logged_in();
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if let Ok(cookie) = HeaderValue::from_str(&login_cookie(&token, ttl, request.secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /public-url`.
pub fn public_url(state: &AppState) -> Response {
    let url = state.public_url.get();
    json_response(StatusCode::OK, &PublicUrl { url })
}

/// `POST /api/logout`.
pub fn logout(state: &AppState, request: &ApiRequest) -> Response {
    if let Some(credential) = &request.credential {
        state.auth.revoke(credential);
    }
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if let Ok(cookie) = HeaderValue::from_str(&clear_cookie(request.secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /api/auth`: whether the request's credential is good, answered
/// `200` either way, so that a page asking at load logs no refusal. A wrong
/// credential still spends the client's failure budget (`429` once it is
/// spent), and a refused login cookie is cleared.
pub fn auth_status(state: &AppState, request: &ApiRequest) -> Response {
    use crate::protocol::auth_status::AuthStatus;
    match crate::router::authenticate(state, request) {
        Ok(_) => json_response(StatusCode::OK, &AuthStatus::from(true)),
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            let mut response = json_response(StatusCode::OK, &AuthStatus::from(false));
            crate::router::clear_refused_cookie(request, &mut response);
            response
        }
        Err(error) => error.into_response(),
    }
}

/// Checks a session id: a UUID.
pub fn session_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_request(format!("bad session id {id:?}: not a UUID")))
}

/// `GET /api/sessions`.
pub async fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let call = state.broker.request(ListSessionsRequest {}, &request.id);
    let response = state
        .broker
        .sessions()
        .list_sessions(call)
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    let sessions = model::sessions(&response.get_ref().sessions);
    Ok(json_response(StatusCode::OK, &SessionList { sessions }))
}

/// `POST /api/sessions`.
pub async fn create(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let body: wire::CreateSessionRequest = request.json()?;
    let mode = match body.mode.as_deref() {
        None => dispatch_proto::v1::SessionMode::Unspecified,
        Some(name) => model::parse_mode(name).ok_or_else(|| {
            ApiError::bad_request(format!("bad mode {name:?}: use \"shell\" or \"claude\""))
        })?,
    };
    let name = body.name.unwrap_or_default();
    check_name(&name)?;
    let call = state.broker.request(
        CreateSessionRequest {
            mode: mode as i32,
            cols: body.cols.unwrap_or(0).min(MAX_TERMINAL_DIMENSION.into()),
            rows: body.rows.unwrap_or(0).min(MAX_TERMINAL_DIMENSION.into()),
            name,
            metadata: body.metadata.unwrap_or_default().into_iter().collect(),
            claude_args: body.claude_args.unwrap_or_default(),
            cwd: body.cwd.unwrap_or_default(),
        },
        &request.id,
    );
    let session = state
        .broker
        .sessions()
        .create_session(call)
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    tracing::info!(session = %session.get_ref().id, "session created");
    Ok(json_response(
        StatusCode::CREATED,
        &model::session(session.get_ref()),
    ))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > MAX_SESSION_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "name longer than {MAX_SESSION_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("name contains control characters"));
    }
    Ok(())
}

/// `GET /api/sessions/{id}`.
pub async fn get(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = session_id(request.param("id"))?;
    let call = state.broker.request(GetSessionRequest { id }, &request.id);
    let session = state
        .broker
        .sessions()
        .get_session(call)
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    Ok(json_response(
        StatusCode::OK,
        &model::session(session.get_ref()),
    ))
}

/// `PATCH /api/sessions/{id}`.
pub async fn rename(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = session_id(request.param("id"))?;
    let body: wire::RenameSessionRequest = request.json()?;
    check_name(&body.name)?;
    let call = state.broker.request(
        RenameSessionRequest {
            id,
            name: body.name,
        },
        &request.id,
    );
    let session = state
        .broker
        .sessions()
        .rename_session(call)
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    Ok(json_response(
        StatusCode::OK,
        &model::session(session.get_ref()),
    ))
}

/// `DELETE /api/sessions/{id}`.
pub async fn end(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let id = session_id(request.param("id"))?;
    let call = state.broker.request(EndSessionRequest { id }, &request.id);
    let session = state
        .broker
        .sessions()
        .end_session(call)
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    tracing::info!(session = %session.get_ref().id, "session ended");
    Ok(json_response(
        StatusCode::OK,
        &model::session(session.get_ref()),
    ))
}

/// `GET /ws/sessions/{id}`: the terminal WebSocket.
pub fn upgrade_terminal(state: &Arc<AppState>, request: &mut ApiRequest) -> Response {
    let Some(mut ws) = request.ws.take() else {
        return ApiError::bad_request("expected a WebSocket upgrade").into_response();
    };
    let session_id = match session_id(request.param("id")) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let size = |name: &str| {
        request
            .query_param(name)
            .and_then(|v| v.parse::<u32>().ok())
            .map_or(0, |v| clamp_dimension(v, 1).into())
    };
    let terminal = TerminalRequest {
        session_id,
        cols: size("cols"),
        rows: size("rows"),
        credential: request.credential.clone().expect("authenticated"),
        request_id: request.id.clone(),
    };
    let deflate = ws.negotiate_deflate(state.config.terminal_compression);
    let state = state.clone();
    ws.accept(move |socket| {
        let sockets = state.sockets.clone();
        sockets.track_future(crate::terminal::run_with(socket, state, terminal, deflate))
    })
}

/// `GET /ws/events`: the session list WebSocket.
pub fn upgrade_events(state: &Arc<AppState>, request: &mut ApiRequest) -> Response {
    let Some(ws) = request.ws.take() else {
        return ApiError::bad_request("expected a WebSocket upgrade").into_response();
    };
    let state = state.clone();
    let credential = request.credential.clone().expect("authenticated");
    let id = request.id.clone();
    ws.accept(move |socket| {
        let sockets = state.sockets.clone();
        sockets.track_future(crate::events::run(socket, state, credential, id))
    })
}
