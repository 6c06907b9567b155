//! `PUT /api/sessions/{id}/files/content?path=`: the request body streamed
//! into the broker's `UploadFile` call as it arrives (a few chunks in
//! flight, never the file). `MAX_UPLOAD_BYTES` is checked against
//! `Content-Length` before anything is read, and counted as the body
//! arrives: past it the call is dropped (the broker writes nothing) and the
//! answer is 413.

use bytes::Bytes;
use dispatch_proto::v1 as pb;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use warp::http::{StatusCode, header};
use warp::reply::Response;

use super::{from_status, target};
use crate::error::{ApiError, json_response};
use crate::protocol::files::UploadedFile;
use crate::router::{ApiRequest, BodyStream};
use crate::state::AppState;

/// Largest data message sent to the broker.
const CHUNK_BYTES: usize = 64 * 1024;
/// Data messages queued for the broker before the body is read further.
const QUEUED_CHUNKS: usize = 4;

/// Writes the request body to a file of the session.
pub async fn upload(state: &AppState, request: &mut ApiRequest) -> Result<Response, ApiError> {
    let (session_id, query) = target(request)?;
    let limit = state.config.max_upload_bytes;
    if declared_length(request).is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let body = request
        .body_stream
        .get_mut()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| ApiError::bad_request("the upload has no body"))?;
    let (sender, receiver) = mpsc::channel(QUEUED_CHUNKS);
    let header = pb::upload_chunk::Chunk::Header(pb::UploadHeader {
        session_id,
        path: query.path,
        overwrite: query.overwrite.unwrap_or(true),
    });
    let _ = sender.send(message(header)).await;
    let call = state
        .broker
        .stream_request(ReceiverStream::new(receiver), &request.id);
    let mut files = state.broker.files();
    let answer = files.upload_file(call);
    tokio::pin!(answer);
    // The broker may answer before the body ends (a refused path): then
    // its answer is the response and the rest of the body is not read.
    let pumped = tokio::select! {
        pumped = pump(body, sender, limit) => pumped,
        answered = &mut answer => return answered_early(answered),
    };
    // On an error the call is dropped unfinished: the broker removes what
    // it wrote.
    pumped?;
    let written = answer.await.map_err(|s| from_status(&s))?.into_inner();
    let body = UploadedFile {
        path: written.path,
        size: written.size,
        absolute_path: written.absolute_path,
    };
    Ok(json_response(
        StatusCode::OK,
        &serde_json::to_value(body).unwrap_or_default(),
    ))
}

fn answered_early(
    answered: Result<tonic::Response<pb::UploadFileResponse>, tonic::Status>,
) -> Result<Response, ApiError> {
    match answered {
        Err(status) => Err(from_status(&status)),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the broker ended the upload before its body",
        )),
    }
}

/// Feeds the body to the broker in messages of at most [`CHUNK_BYTES`],
/// then the end message; stops with 413 past `limit` bytes.
async fn pump(
    mut body: BodyStream,
    sender: mpsc::Sender<pb::UploadChunk>,
    limit: u64,
) -> Result<(), ApiError> {
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(too_large(limit));
        }
        while !chunk.is_empty() {
            let part: Bytes = chunk.split_to(chunk.len().min(CHUNK_BYTES));
            if sender
                .send(message(pb::upload_chunk::Chunk::Data(part)))
                .await
                .is_err()
            {
                // The call ended; its answer says why.
                return Ok(());
            }
        }
    }
    let _ = sender
        .send(message(pb::upload_chunk::Chunk::End(pb::UploadEnd {})))
        .await;
    Ok(())
}

fn message(chunk: pb::upload_chunk::Chunk) -> pb::UploadChunk {
    pb::UploadChunk { chunk: Some(chunk) }
}

/// The body's declared `Content-Length`, if any.
fn declared_length(request: &ApiRequest) -> Option<u64> {
    request.header(header::CONTENT_LENGTH)?.trim().parse().ok()
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than the limit of {limit} bytes (MAX_UPLOAD_BYTES)"),
    )
}
