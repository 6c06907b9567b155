//! The web UI, embedded in the binary at build time (see `build.rs`), served
//! with content types, cache headers and, on HTML, the security headers
//! (CSP without inline scripts, no framing, no sniffing, no referrer).

use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The Content-Security-Policy of every HTML page.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const PLACEHOLDER: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>dispatch</title></head><body><h1>dispatch</h1>\
<p>The web UI was not built into this gateway. Run <code>scripts/build-web.sh</code>, \
then rebuild <code>dispatch-gateway</code>. The API and WebSockets \
(<code>docs/protocol.md</code>) work without it.</p></body></html>\n";

/// Whether the binary carries a built UI.
pub fn ui_built() -> bool {
    find("index.html").is_some()
}

/// Answers a GET for a non-API path: the file if embedded, index.html for
/// client-side routes, 404 for a missing file with an extension.
pub fn serve(path: &str) -> Response {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some(bytes) = find(path) {
        return file_response(path, bytes);
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') && path != "index.html" {
        return crate::error::ApiError::not_found("no such file").into_response();
    }
    match find("index.html") {
        Some(index) => file_response("index.html", index),
        None => html_response(PLACEHOLDER.as_bytes()),
    }
}

fn find(path: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

fn file_response(path: &str, bytes: &'static [u8]) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if mime.essence_str() == "text/html" {
        return html_response(bytes);
    }
    let mut response = Response::new(bytes.into());
    let headers = response.headers_mut();
    let content_type = if mime.type_() == "text" || mime.essence_str() == "application/javascript" {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    };
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let cache = if is_hashed(path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn html_response(bytes: &'static [u8]) -> Response {
    let mut response = Response::new(bytes.into());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    add_html_security_headers(headers);
    response
}

/// CSP and framing headers for an HTML page.
pub fn add_html_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Whether a file name carries a content hash (`index-3f9a1c2b.js`, or
/// anything under a bundler's `assets/` folder), so it can be cached forever.
fn is_hashed(path: &str) -> bool {
    if path.starts_with("assets/") {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    stem.rsplit(['-', '.']).next().is_some_and(|hash| {
        stem.contains('-')
            && hash.len() >= 8
            && hash.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert!(is_hashed("assets/index-3f9a1c2b.js"));
        assert!(is_hashed("app-Dk29xYz1.css"));
        assert!(!is_hashed("favicon.ico"));
        assert!(!is_hashed("index.html"));
    }

    #[test]
    fn unknown_route_gets_html_missing_file_404() {
        let page = serve("/some/client/route");
        assert_eq!(page.status(), StatusCode::OK);
        assert!(
            page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(serve("/missing.js").status(), StatusCode::NOT_FOUND);
    }
}
