//! Session files over HTTP: `GET /api/sessions/{id}/files` (a directory
//! listing), `GET .../files/content` (a download: a file, or a folder as a
//! tar archive) and `PUT .../files/content` (an upload, streamed). The
//! broker does the file work (`dispatch.v1.Files`); the gateway holds no
//! file, only a few chunks in flight, and decides how a download is
//! presented to the browser (always as an attachment of a safe type).

mod download;
mod listing;
mod upload;

pub use download::{content_disposition, download, safe_content_type};
pub use listing::list;
pub use upload::upload;

use serde::Deserialize;
use warp::http::StatusCode;

use crate::error::ApiError;
use crate::router::ApiRequest;

/// The query of the file routes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileQuery {
    /// Relative to the session's directory; `""` is the directory itself.
    path: String,
    /// Uploads: replace an existing file (`true` unless `false`).
    overwrite: Option<bool>,
}

/// The session id and the query, percent-decoded.
fn target(request: &ApiRequest) -> Result<(String, FileQuery), ApiError> {
    let id = crate::api::session_id(request.param("id"))?;
    let query = serde_urlencoded::from_str(request.query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?;
    Ok((id, query))
}

/// A Files call's status as an HTTP error: a refused path is 400 (bad) or
/// 403 (leads outside, special file), a missing one 404, an existing one
/// or a file where a folder is needed 409.
fn from_status(status: &tonic::Status) -> ApiError {
    use tonic::Code;
    let message = status.message().to_string();
    match status.code() {
        Code::PermissionDenied => ApiError::new(StatusCode::FORBIDDEN, message),
        Code::AlreadyExists | Code::FailedPrecondition => {
            ApiError::new(StatusCode::CONFLICT, message)
        }
        Code::Aborted => ApiError::bad_request(message),
        _ => ApiError::from_status(status),
    }
}
