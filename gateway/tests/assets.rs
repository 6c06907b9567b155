//! The embedded web UI through a real gateway: Brotli or gzip by
//! `Accept-Encoding` with `Vary`, strong `ETag`s and 304 on revalidation,
//! decoded bytes equal to the raw file, the security headers kept, and the
//! first page load within its byte budget on the wire.

mod common;

use std::io::Read;

use common::*;
use reqwest::header::{self, HeaderMap};

/// Bytes on the wire a first visit may cost (index.html and what it links).
const FIRST_LOAD_BUDGET: usize = 250 * 1024;

struct Fetched {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// GET `path` with these headers; the client decodes nothing.
async fn get(gateway: &GatewayProc, path: &str, headers: &[(&str, &str)]) -> Fetched {
    let mut request = http().get(gateway.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Fetched {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

impl Fetched {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The body decoded according to its `Content-Encoding`.
    fn decoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.header(header::CONTENT_ENCODING) {
            "br" => {
                brotli_decompressor::Decompressor::new(&self.body[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            "gzip" => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            "" => out.clone_from(&self.body),
            other => panic!("unexpected Content-Encoding {other}"),
        };
        out
    }
}

/// The paths index.html links to (`href="…"` and `src="…"`, same origin).
fn linked(index: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        for part in index.split(attribute).skip(1) {
            let target = part.split('"').next().unwrap();
            if !target.contains("://") {
                paths.push(format!("/{}", target.trim_start_matches('/')));
            }
        }
    }
    paths
}

async fn gateway() -> (BrokerProc, GatewayProc) {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    (broker, gateway)
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_are_served_compressed_by_accept_encoding() {
    let (_broker, gateway) = gateway().await;
    let raw_index = get(&gateway, "/", &[]).await;
    assert_eq!(raw_index.status, 200);
    let index = String::from_utf8(raw_index.body.clone()).unwrap();
    assert!(
        index.contains("<script"),
        "the web UI is built into this gateway (scripts/build-web.sh)"
    );
    let mut paths = vec!["/".to_string()];
    paths.extend(linked(&index));
    assert!(paths.iter().any(|p| p.ends_with(".js")), "{paths:?}");

    for path in &paths {
        let raw = get(&gateway, path, &[]).await;
        assert_eq!(raw.status, 200, "{path}");
        assert_eq!(raw.header(header::CONTENT_ENCODING), "", "{path}: identity");
        assert_eq!(raw.header(header::VARY), "Accept-Encoding", "{path}");
        let mut tags = vec![raw.header(header::ETAG).to_string()];
        for (accept, coding) in [
            ("gzip, deflate, br, zstd", "br"),
            ("gzip", "gzip"),
            ("br;q=0, gzip;q=0.8", "gzip"),
            ("identity", ""),
        ] {
            let fetched = get(&gateway, path, &[("accept-encoding", accept)]).await;
            assert_eq!(fetched.status, 200, "{path} {accept}");
            let encoding = fetched.header(header::CONTENT_ENCODING);
            // Files too small to gain from compression have no copies.
            if raw.body.len() > 1024 {
                assert_eq!(encoding, coding, "{path} with {accept}");
            }
            assert_eq!(fetched.header(header::VARY), "Accept-Encoding");
            assert_eq!(fetched.decoded(), raw.body, "{path} decoded ({encoding})");
            assert_eq!(
                fetched.header(header::CONTENT_TYPE),
                raw.header(header::CONTENT_TYPE)
            );
            let tag = fetched.header(header::ETAG).to_string();
            assert!(tag.starts_with('"') && tag.ends_with('"'), "strong: {tag}");
            tags.push(tag);
        }
        // One tag per representation.
        let mut distinct = tags.clone();
        distinct.sort();
        distinct.dedup();
        if raw.body.len() > 1024 {
            assert_eq!(distinct.len(), 3, "{path}: {tags:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revalidation_answers_304_and_html_keeps_its_security_headers() {
    let (_broker, gateway) = gateway().await;
    let br = [("accept-encoding", "br")];
    let page = get(&gateway, "/", &br).await;
    let tag = page.header(header::ETAG).to_string();
    let csp = page.header(header::CONTENT_SECURITY_POLICY).to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header(header::X_FRAME_OPTIONS), "DENY");

    let again = get(
        &gateway,
        "/",
        &[("accept-encoding", "br"), ("if-none-match", &tag)],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header(header::ETAG), tag);
    assert_eq!(again.header(header::VARY), "Accept-Encoding");
    assert_eq!(again.header(header::CONTENT_SECURITY_POLICY), csp);

    // A list of tags, weak comparison.
    let listed = format!("\"other\", W/{tag}");
    let again = get(
        &gateway,
        "/index.html",
        &[("accept-encoding", "br"), ("if-none-match", &listed)],
    )
    .await;
    assert_eq!(again.status, 304);

    // Another tag: the full page.
    let changed = get(
        &gateway,
        "/",
        &[("accept-encoding", "br"), ("if-none-match", "\"stale\"")],
    )
    .await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body, page.body);

    // The compressed copies are not files of their own.
    assert_eq!(get(&gateway, "/index.html.br", &[]).await.status, 404);
    assert_eq!(get(&gateway, "/index.html.gz", &[]).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn first_page_load_fits_its_budget_on_the_wire() {
    let (_broker, gateway) = gateway().await;
    // What a browser sends.
    let accept = [("accept-encoding", "gzip, deflate, br, zstd")];
    let index = get(&gateway, "/", &accept).await;
    let html = String::from_utf8(index.decoded()).unwrap();
    let mut total = index.body.len();
    let mut raw_total = html.len();
    for path in linked(&html) {
        let fetched = get(&gateway, &path, &accept).await;
        assert_eq!(fetched.status, 200, "{path}");
        total += fetched.body.len();
        raw_total += fetched.decoded().len();
    }
    println!("first load: {total} bytes on the wire, {raw_total} bytes decoded");
    assert!(raw_total > FIRST_LOAD_BUDGET, "the bundle is what it is");
    assert!(
        total <= FIRST_LOAD_BUDGET,
        "first load costs {total} bytes on the wire (budget {FIRST_LOAD_BUDGET})"
    );
}
