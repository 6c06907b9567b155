//! `GET /api/sessions/{id}/files?path=`: one directory's entries.

use dispatch_proto::v1 as pb;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{from_status, target};
use crate::error::{ApiError, json_response};
use crate::protocol::files::{FileEntry, FileKind, FileList};
use crate::router::ApiRequest;
use crate::state::AppState;

/// Lists a directory of the session.
pub async fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let (session_id, query) = target(request)?;
    let call = state.broker.request(
        pb::ListFilesRequest {
            session_id,
            path: query.path,
        },
        &request.id,
    );
    let listing = state
        .broker
        .files()
        .list_files(call)
        .await
        .map_err(|s| from_status(&s))?
        .into_inner();
    let body = FileList {
        path: listing.path,
        entries: listing.entries.into_iter().map(entry).collect(),
        truncated: listing.truncated,
    };
    Ok(json_response(
        StatusCode::OK,
        &serde_json::to_value(body).unwrap_or_default(),
    ))
}

fn entry(entry: pb::FileEntry) -> FileEntry {
    FileEntry {
        kind: kind(entry.kind()),
        name: entry.name,
        size: entry.size,
        modified_at: entry.modified_ms,
    }
}

/// The wire kind of a broker kind.
pub fn kind(kind: pb::FileKind) -> FileKind {
    match kind {
        pb::FileKind::File => FileKind::File,
        pb::FileKind::Directory => FileKind::Directory,
        pb::FileKind::Symlink => FileKind::Symlink,
        pb::FileKind::Other | pb::FileKind::Unspecified => FileKind::Other,
    }
}
