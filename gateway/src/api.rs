//! The REST handlers and the WebSocket upgrades of docs/protocol.md:
//! login/logout, sessions (list, create, get, rename, end), readiness.

use std::collections::HashMap;
use std::sync::Arc;

use dispatch_proto::limits::{MAX_SESSION_NAME_CHARS, MAX_TERMINAL_DIMENSION, clamp_dimension};
use dispatch_proto::v1::{
    CreateSessionRequest, EndSessionRequest, GetSessionRequest, ListSessionsRequest,
    RenameSessionRequest,
};
use serde::Deserialize;
use serde_json::json;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;

use crate::auth::{clear_cookie, login_cookie};
use crate::error::{ApiError, empty_response, json_response};
use crate::model;
use crate::router::ApiRequest;
use crate::state::AppState;
use crate::terminal::TerminalRequest;

/// `GET /readyz`.
pub async fn ready(state: &AppState) -> Response {
    match state.broker.ready().await {
        Ok(()) => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(reason) => {
            let mut error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason);
            error.retry_after = Some(2);
            error.into_response()
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    key: String,
}

/// `POST /api/login`.
pub async fn login(state: &AppState, request: &ApiRequest) -> Response {
    if let Some(refusal) = state.limiter.refusal(request.client_ip) {
        return refusal;
    }
    let body: LoginBody = match request.json() {
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
    crate::metrics::LOGINS.inc();
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if let Ok(cookie) = HeaderValue::from_str(&login_cookie(&token, ttl, request.secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Routes the gateway's own authenticated endpoints; `None` for other paths.
pub async fn route(state: &Arc<AppState>, request: &mut ApiRequest) -> Option<Response> {
    let method = request.method.clone();
    if request.path == "/api/logout" {
        return Some(match method {
            Method::POST => logout(state, request),
            _ => ApiError::method_not_allowed().into_response(),
        });
    }
    if request.path == "/ws/events" {
        return Some(upgrade_events(state, request));
    }
    if let Some(segments) = request.segments("/ws/sessions") {
        return Some(match segments.as_slice() {
            [id] => {
                let id = id.to_string();
                upgrade_terminal(state, request, id)
            }
            _ => ApiError::not_found("no such endpoint").into_response(),
        });
    }
    let segments: Vec<String> = request
        .segments("/api/sessions")?
        .into_iter()
        .map(String::from)
        .collect();
    let response = match (method, segments.as_slice()) {
        (Method::GET, []) => list(state, request).await,
        (Method::POST, []) => create(state, request).await,
        (Method::GET, [id]) => get(state, request, id).await,
        (Method::PATCH, [id]) => rename(state, request, id).await,
        (Method::DELETE, [id]) => end(state, request, id).await,
        (Method::GET, [id, egress]) if egress == "egress" => match session_id(id) {
            Ok(id) => crate::egress::serve_ledger(state, request, id).await,
            Err(error) => Err(error),
        },
        (_, [] | [_]) => Err(ApiError::method_not_allowed()),
        (_, [_, egress]) if egress == "egress" => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    Some(response.unwrap_or_else(ApiError::into_response))
}

fn logout(state: &AppState, request: &ApiRequest) -> Response {
    if let Some(credential) = &request.credential {
        state.auth.revoke(credential);
    }
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if let Ok(cookie) = HeaderValue::from_str(&clear_cookie(request.secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Checks a session id: a UUID.
fn session_id(id: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_request(format!("bad session id {id:?}: not a UUID")))
}

async fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let call = state.broker.request(ListSessionsRequest {}, &request.id);
    let response = state
        .broker
        .sessions()
        .list_sessions(call)
        .await
        .map_err(|s| ApiError::from_status(&s))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"sessions": model::sessions(&response.get_ref().sessions)}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    mode: Option<String>,
    cols: Option<u32>,
    rows: Option<u32>,
    name: Option<String>,
    metadata: Option<HashMap<String, String>>,
    claude_args: Option<Vec<String>>,
    cwd: Option<String>,
}

async fn create(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let body: CreateBody = request.json()?;
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
            metadata: body.metadata.unwrap_or_default(),
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

async fn get(state: &AppState, request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let id = session_id(id)?;
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

#[derive(Deserialize)]
struct RenameBody {
    name: String,
}

async fn rename(state: &AppState, request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let id = session_id(id)?;
    let body: RenameBody = request.json()?;
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

async fn end(state: &AppState, request: &ApiRequest, id: &str) -> Result<Response, ApiError> {
    let id = session_id(id)?;
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

fn upgrade_terminal(state: &Arc<AppState>, request: &mut ApiRequest, id: String) -> Response {
    let Some(ws) = request.ws.take() else {
        return ApiError::bad_request("expected a WebSocket upgrade").into_response();
    };
    let session_id = match session_id(&id) {
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
    let state = state.clone();
    ws.accept(move |socket| {
        let sockets = state.sockets.clone();
        sockets.track_future(crate::terminal::run(socket, state, terminal))
    })
}

fn upgrade_events(state: &Arc<AppState>, request: &mut ApiRequest) -> Response {
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
