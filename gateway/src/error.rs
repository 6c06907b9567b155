//! JSON errors: every failure the gateway answers is an
//! [`ErrorBody`] (`{"error": "..."}`) with a precise HTTP status, and broker
//! statuses map onto HTTP ones here.

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::protocol::errors::ErrorBody;

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication required")
    }
    pub fn origin() -> Self {
        Self::new(StatusCode::FORBIDDEN, "origin not allowed")
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large (limit {} KiB)", limit / 1024),
        )
    }
    pub fn broker_unreachable(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("broker unreachable: {detail}"),
        );
        e.retry_after = Some(2);
        e
    }

    /// Maps a broker gRPC status onto an HTTP error.
    pub fn from_status(status: &tonic::Status) -> Self {
        use tonic::Code;
        let message = status.message().to_string();
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::bad_request(message),
            Code::NotFound => Self::not_found(message),
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => {
                Self::new(StatusCode::CONFLICT, message)
            }
            Code::ResourceExhausted => {
                let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, message);
                e.retry_after = Some(5);
                e
            }
            Code::Unavailable | Code::Cancelled => {
                Self::broker_unreachable(unreachable_reason(status))
            }
            Code::DeadlineExceeded => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "broker did not answer in time")
            }
            Code::Unauthenticated | Code::PermissionDenied => Self::new(
                StatusCode::BAD_GATEWAY,
                "the broker refused the gateway's credentials (check BROKER_TOKEN)",
            ),
            _ => Self::new(StatusCode::BAD_GATEWAY, format!("broker error: {message}")),
        }
    }

    /// The JSON response.
    pub fn into_response(self) -> Response {
        let mut response = json_response(self.status, &ErrorBody::new(self.message));
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A short reason for an unreachable broker, without addresses or secrets.
pub fn unreachable_reason(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut reason = status.message().to_string();
    let mut source = status.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        source = err.source();
    }
    if reason.is_empty() {
        reason = "unavailable".into();
    }
    reason
}

/// A JSON body with a status and `Cache-Control: no-store`.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut response = Response::new(serde_json::to_vec(body).unwrap_or_default().into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An empty response with a status.
pub fn empty_response(status: StatusCode) -> Response {
    let mut response = Response::new(Vec::<u8>::new().into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
