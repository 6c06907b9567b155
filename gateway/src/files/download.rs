//! `GET /api/sessions/{id}/files/content?path=`: a file, or a folder as a
//! tar archive, streamed from the broker as it reads it. The browser gets it
//! as an attachment (`Content-Disposition`, a filename made safe), of a type
//! that is never rendered as a document: images that browsers show as images
//! keep their type (for previews), everything else is
//! `application/octet-stream`; `nosniff` and a sandboxing CSP stop any
//! reinterpretation.

use bytes::Bytes;
use dispatch_proto::v1 as pb;
use tokio_stream::wrappers::ReceiverStream;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::{from_status, target};
use crate::error::ApiError;
use crate::router::ApiRequest;
use crate::state::AppState;

/// Data messages held between the broker and the client.
const FORWARDED_CHUNKS: usize = 4;

/// The CSP of a download: nothing in it may run or load anything.
const DOWNLOAD_CSP: &str = "sandbox; default-src 'none'";

/// Streams a file or a folder archive of the session.
pub async fn download(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let (session_id, query) = target(request)?;
    let call = state.broker.stream_request(
        pb::DownloadFileRequest {
            session_id: session_id.clone(),
            path: query.path,
        },
        &request.id,
    );
    let mut stream = state
        .broker
        .files()
        .download_file(call)
        .await
        .map_err(|s| from_status(&s))?
        .into_inner();
    let header = match stream.message().await.map_err(|s| from_status(&s))? {
        Some(pb::DownloadChunk {
            chunk: Some(pb::download_chunk::Chunk::Header(header)),
        }) => header,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the broker sent no download header",
            ));
        }
    };
    let archive = header.kind() == pb::FileKind::Directory;
    let filename = if archive {
        let name = if header.name.is_empty() {
            format!("session-{}", &session_id[..8])
        } else {
            header.name.clone()
        };
        format!("{name}.tar")
    } else {
        header.name.clone()
    };
    let mut response = warp::reply::stream(forward(stream)).into_response();
    let content_type = if archive {
        "application/x-tar"
    } else {
        safe_content_type(&filename)
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&filename)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOWNLOAD_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !archive {
        headers.insert("x-file-size", HeaderValue::from(header.size));
    }
    Ok(response)
}

/// The data of a download stream, forwarded by a task (the response body
/// must be `Sync`); it ends when the client leaves, which cancels the call.
fn forward(
    mut stream: tonic::Streaming<pb::DownloadChunk>,
) -> ReceiverStream<Result<Bytes, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(FORWARDED_CHUNKS);
    tokio::spawn(async move {
        loop {
            let item = match stream.message().await {
                Ok(Some(pb::DownloadChunk {
                    chunk: Some(pb::download_chunk::Chunk::Data(data)),
                })) => Ok(data),
                Ok(Some(_)) => continue,
                Ok(None) => return,
                // A failure midway cuts the response off: the client sees
                // an incomplete download, never a complete-looking wrong one.
                Err(status) => Err(std::io::Error::other(status.message().to_owned())),
            };
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// The `Content-Type` a file is served with: raster images by their
/// extension (so a preview can show them), anything else as bytes. SVG, HTML
/// and scripts are bytes: nothing served here is a document.
pub fn safe_content_type(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("bmp") => "image/bmp",
        _ => "application/octet-stream",
    }
}

/// `attachment` with the name twice: an ASCII fallback (quotes, backslashes
/// and anything outside printable ASCII replaced by `_`) and the exact name
/// percent-encoded (RFC 6266, RFC 8187).
pub fn content_disposition(name: &str) -> String {
    let name = if name.is_empty() { "download" } else { name };
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_attachments_with_safe_names() {
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        assert_eq!(
            content_disposition("x\"; filename=evil.html"),
            "attachment; filename=\"x_; filename=evil.html\"; filename*=UTF-8''x%22%3B%20filename%3Devil.html"
        );
        assert_eq!(
            content_disposition("été.png"),
            "attachment; filename=\"_t_.png\"; filename*=UTF-8''%C3%A9t%C3%A9.png"
        );
        assert!(content_disposition("").contains("download"));
    }

    #[test]
    fn only_raster_images_keep_their_type() {
        assert_eq!(safe_content_type("shot.PNG"), "image/png");
        assert_eq!(safe_content_type("a.jpeg"), "image/jpeg");
        for name in ["index.html", "x.svg", "a.js", "noext", "a.htm", "b.xhtml"] {
            assert_eq!(
                safe_content_type(name),
                "application/octet-stream",
                "{name}"
            );
        }
    }
}
