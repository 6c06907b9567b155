//! The web UI, embedded in the binary at build time (see `build.rs`), served
//! with content types, cache headers and, on HTML, the security headers
//! (CSP without inline scripts, no framing, no sniffing, no referrer).
//!
//! Text files come with Brotli (`.br`) and gzip (`.gz`) copies made once by
//! `scripts/build-web.sh`; the copy the request's `Accept-Encoding` prefers is
//! served (`Vary: Accept-Encoding`), each representation with its own strong
//! `ETag`, and a matching `If-None-Match` gets 304 Not Modified.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};
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

/// A content coding of the embedded copies, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    const PREFERRED: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix of the embedded copy.
    fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
        }
    }
}

/// Whether the binary carries a built UI.
pub fn ui_built() -> bool {
    find("index.html").is_some()
}

/// Answers a GET for a non-API path: the file if embedded, index.html for
/// client-side routes, 404 for a missing file with an extension (and for the
/// compressed copies, which are only served as an encoding).
pub fn serve(path: &str, request: &HeaderMap) -> Response {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let copy = Coding::PREFERRED
        .iter()
        .any(|coding| path.ends_with(coding.suffix()));
    if !copy && find(path).is_some() {
        return file_response(path, request);
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') && path != "index.html" {
        return crate::error::ApiError::not_found("no such file").into_response();
    }
    match find("index.html") {
        Some(_) => file_response("index.html", request),
        None => html_response(Response::new(PLACEHOLDER.into())),
    }
}

fn find(path: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

/// The coding to answer with: the most preferred embedded copy that
/// `Accept-Encoding` allows, else none (identity).
fn negotiate(path: &str, request: &HeaderMap) -> Option<(Coding, &'static [u8])> {
    let accepted = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Coding::PREFERRED
        .into_iter()
        .filter(|coding| accepts(&accepted, coding.token()))
        .find_map(|coding| find(&format!("{path}{}", coding.suffix())).map(|bytes| (coding, bytes)))
}

/// Whether an `Accept-Encoding` value allows `token` (listed, or `*`, with a
/// non-zero quality; an explicit entry wins over `*`).
pub fn accepts(accept_encoding: &str, token: &str) -> bool {
    let mut wildcard = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(token) {
            return quality > 0.0;
        }
        if name == "*" {
            wildcard = Some(quality > 0.0);
        }
    }
    wildcard.unwrap_or(false)
}

/// The strong entity tag of an embedded file's representation.
fn etag(path: &str, coding: Option<Coding>) -> String {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        embedded::ASSETS
            .iter()
            .map(|(_, bytes)| {
                let digest = Sha256::digest(bytes);
                digest[..12].iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect()
    });
    let index = embedded::ASSETS
        .iter()
        .position(|(name, _)| *name == path)
        .unwrap_or_default();
    let hash = tags.get(index).map(String::as_str).unwrap_or_default();
    match coding {
        Some(coding) => format!("\"{hash}-{}\"", coding.token()),
        None => format!("\"{hash}\""),
    }
}

/// Whether `If-None-Match` lists `tag` (or `*`), compared weakly.
fn not_modified(request: &HeaderMap, tag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == tag || candidate == "*")
}

fn file_response(path: &str, request: &HeaderMap) -> Response {
    let raw = find(path).unwrap_or_default();
    let chosen = negotiate(path, request);
    let tag = etag(path, chosen.map(|(coding, _)| coding));
    let mut response = if not_modified(request, &tag) {
        let mut response = Response::new(b"".as_slice().into());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(chosen.map_or(raw, |(_, bytes)| bytes).into())
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some((coding, _)) = chosen {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.token()),
        );
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if mime.essence_str() == "text/html" {
        return html_response(response);
    }
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
    if path == SERVICE_WORKER {
        headers.insert("service-worker-allowed", HeaderValue::from_static("/"));
    }
    response
}

/// The web UI's service worker (Web Push notifications), whose scope is the
/// whole site.
pub const SERVICE_WORKER: &str = "sw.js";

/// Adds the headers of an HTML page to `response`.
fn html_response(mut response: Response) -> Response {
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
    fn accept_encoding_qualities() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=0.5, br;q=1.0", "gzip"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*, br;q=0", "br"));
        assert!(!accepts("*;q=0", "gzip"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("identity", "gzip"));
    }

    #[test]
    fn unknown_route_gets_html_missing_file_404() {
        let none = HeaderMap::new();
        let page = serve("/some/client/route", &none);
        assert_eq!(page.status(), StatusCode::OK);
        assert!(
            page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(serve("/missing.js", &none).status(), StatusCode::NOT_FOUND);
        assert_eq!(
            serve("/index.html.br", &none).status(),
            StatusCode::NOT_FOUND
        );
    }
}
