//! Session files through a real gateway and broker: listing, downloads (a
//! file, a folder as a tar archive) with their safe presentation headers,
//! streamed uploads with `MAX_UPLOAD_BYTES` (413 before the body is read,
//! and when a chunked body grows past it), hostile paths mapped to 400, 403
//! and 404, the Origin check, and a 200 MB upload and download through a
//! gateway whose memory stays flat.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{BrokerProc, GatewayProc, create_session, http, login};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Fixture {
    _broker: BrokerProc,
    gateway: GatewayProc,
    cookie: String,
    id: String,
    dir: PathBuf,
}

impl Fixture {
    async fn start(env: &[(&str, &str)]) -> Self {
        let broker = BrokerProc::start().await;
        let gateway = GatewayProc::start(&broker, env).await;
        let cookie = login(&gateway).await;
        let session = create_session(&gateway, &cookie, serde_json::json!({"mode": "shell"})).await;
        let id = session["id"].as_str().unwrap().to_owned();
        let dir = PathBuf::from(session["cwd"].as_str().unwrap());
        assert!(dir.is_dir(), "{session}");
        Self {
            _broker: broker,
            gateway,
            cookie,
            id,
            dir,
        }
    }

    fn url(&self, route: &str, path: &str) -> String {
        let query = serde_urlencoded::to_string([("path", path)]).unwrap();
        self.gateway
            .url(&format!("/api/sessions/{}/{route}?{query}", self.id))
    }

    async fn get(&self, route: &str, path: &str) -> reqwest::Response {
        http()
            .get(self.url(route, path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn put(
        &self,
        path: &str,
        extra: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        http()
            .put(format!("{}{extra}", self.url("files/content", path)))
            .header("cookie", &self.cookie)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn files_are_listed_downloaded_and_uploaded_with_safe_headers() {
    let f = Fixture::start(&[]).await;
    std::fs::create_dir(f.dir.join("docs")).unwrap();
    std::fs::write(f.dir.join("docs/page.html"), "<script>alert(1)</script>").unwrap();
    std::fs::write(f.dir.join("shot.png"), b"\x89PNG\r\n\x1a\n").unwrap();

    let uploaded = f
        .put("docs/notes é.txt", "", &b"uploaded through the gateway"[..])
        .await;
    assert_eq!(uploaded.status(), 200);
    let uploaded: serde_json::Value = uploaded.json().await.unwrap();
    assert_eq!(uploaded["path"], "docs/notes é.txt");
    assert_eq!(uploaded["size"], 28);
    assert_eq!(
        PathBuf::from(uploaded["absolutePath"].as_str().unwrap()),
        f.dir.join("docs/notes é.txt")
    );
    assert_eq!(
        std::fs::read(f.dir.join("docs/notes é.txt")).unwrap(),
        b"uploaded through the gateway"
    );

    let listing = f.get("files", "docs").await;
    assert_eq!(listing.status(), 200);
    assert_eq!(listing.headers()["cache-control"], "no-store");
    let listing: serde_json::Value = listing.json().await.unwrap();
    let names: Vec<(&str, &str, u64)> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["modifiedAt"].as_i64().unwrap() > 1_600_000_000_000);
            (
                e["name"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("notes é.txt", "file", 28), ("page.html", "file", 25)]
    );
    assert_eq!(listing["path"], "docs");
    let top: serde_json::Value = f.get("files", "").await.json().await.unwrap();
    assert_eq!(top["entries"][0]["kind"], "directory");

    // HTML is bytes, as an attachment, sandboxed and never sniffed.
    let page = f.get("files/content", "docs/page.html").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert_eq!(page.bytes().await.unwrap(), "<script>alert(1)</script>");
    let png = f.get("files/content", "shot.png").await;
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(
        png.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let named = f.get("files/content", "docs/notes é.txt").await;
    assert_eq!(
        named.headers()["content-disposition"],
        "attachment; filename=\"notes _.txt\"; filename*=UTF-8''notes%20%C3%A9.txt"
    );

    // A folder is a tar archive.
    let archive = f.get("files/content", "docs").await;
    assert_eq!(archive.status(), 200);
    assert_eq!(archive.headers()["content-type"], "application/x-tar");
    assert_eq!(
        archive.headers()["content-disposition"],
        "attachment; filename=\"docs.tar\"; filename*=UTF-8''docs.tar"
    );
    let bytes = archive.bytes().await.unwrap();
    let mut tar = tar::Archive::new(bytes.as_ref());
    let paths: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(paths, ["docs/", "docs/notes é.txt", "docs/page.html"]);

    // Replacing: by default, and refused with overwrite=false.
    let again = f.put("docs/page.html", "&overwrite=false", &b"x"[..]).await;
    assert_eq!(error_of(again).await.0, 409);
    assert_eq!(
        f.put("docs/page.html", "", &b"replaced"[..]).await.status(),
        200
    );
    assert_eq!(
        std::fs::read(f.dir.join("docs/page.html")).unwrap(),
        b"replaced"
    );
}

#[tokio::test]
async fn hostile_paths_are_400_403_or_404_and_the_origin_is_checked() {
    let f = Fixture::start(&[]).await;
    let outside = f.dir.parent().unwrap().join("outside-secret");
    std::fs::write(&outside, "OUTSIDE").unwrap();
    std::os::unix::fs::symlink(&outside, f.dir.join("link")).unwrap();
    nix::unistd::mkfifo(&f.dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    for (path, status) in [
        ("../outside-secret", 400),
        ("/etc/passwd", 400),
        ("a\0b", 400),
        ("a\x1bb", 400),
        (&"n".repeat(300), 400),
        ("link", 403),
        ("fifo", 403),
        ("missing", 404),
    ] {
        let (got, message) = error_of(f.get("files/content", path).await).await;
        assert_eq!(got, status, "download {path:?}: {message}");
        assert!(!message.is_empty() && !message.contains("OUTSIDE"));
    }
    for (path, status) in [("..", 400), ("link", 403), ("missing", 404), ("fifo", 409)] {
        let (got, message) = error_of(f.get("files", path).await).await;
        assert_eq!(got, status, "list {path:?}: {message}");
    }
    for (path, status) in [
        ("../planted", 400),
        ("/tmp/planted", 400),
        ("nowhere/x", 404),
    ] {
        let (got, message) = error_of(f.put(path, "", &b"planted"[..]).await).await;
        assert_eq!(got, status, "upload {path:?}: {message}");
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"OUTSIDE");
    let bad_id = http()
        .get(f.gateway.url("/api/sessions/not-a-uuid/files?path="))
        .header("cookie", &f.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), 400);

    // A cross-site upload is refused before anything is written; so is
    // one without a credential.
    let foreign = http()
        .put(f.url("files/content", "cross.txt"))
        .header("cookie", &f.cookie)
        .header("origin", "https://evil.example")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let anonymous = http()
        .put(f.url("files/content", "anon.txt"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(!f.dir.join("cross.txt").exists() && !f.dir.join("anon.txt").exists());
}

/// Sends a raw HTTP/1.1 request head on a new connection.
async fn raw_request(f: &Fixture, method: &str, path: &str, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(f.gateway.addr).await.unwrap();
    let query = serde_urlencoded::to_string([("path", path)]).unwrap();
    let head = format!(
        "{method} /api/sessions/{}/files/content?{query} HTTP/1.1\r\nhost: {}\r\ncookie: {}\r\n{headers}\r\n",
        f.id, f.gateway.addr, f.cookie
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads the response head (and whatever of the body came with it).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !common::contains(&received, b"\r\n\r\n") {
        let n = tokio::time::timeout(common::DEADLINE, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn uploads_past_max_upload_bytes_are_413_and_leave_nothing() {
    let f = Fixture::start(&[("MAX_UPLOAD_BYTES", "1048576")]).await;
    // Content-Length over the limit: answered before any byte of the body.
    let mut stream = raw_request(&f, "PUT", "big.bin", "content-length: 1048577\r\n").await;
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("MAX_UPLOAD_BYTES"), "{head}");

    // Exactly the limit is taken.
    let mut stream = raw_request(&f, "PUT", "exact.bin", "content-length: 1048576\r\n").await;
    stream.write_all(&vec![5u8; 1048576]).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        std::fs::metadata(f.dir.join("exact.bin")).unwrap().len(),
        1048576
    );

    // A chunked body is cut off once it passes the limit.
    let stream = raw_request(&f, "PUT", "chunked.bin", "transfer-encoding: chunked\r\n").await;
    let (mut reader, mut writer) = stream.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let sending = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let chunk = vec![9u8; 64 * 1024];
            for _ in 0..1024 {
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            let _ = writer.write_all(b"0\r\n\r\n").await;
        })
    };
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !common::contains(&received, b"\r\n\r\n") {
        let n = tokio::time::timeout(common::DEADLINE, reader.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&received);
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");
    let _ = sending.await;
    let sent = sent.load(Ordering::Relaxed);
    eprintln!("{} MiB sent before the gateway stopped reading", sent >> 20);
    assert!(
        sent < 32 << 20,
        "the gateway stopped reading soon after the limit ({sent} bytes sent)"
    );
    common::eventually("nothing of the cut-off upload is left", || async {
        let names: Vec<String> = std::fs::read_dir(&f.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names == ["exact.bin"]
    })
    .await;
}

/// A 1 MiB block, distinct for every index (its first 8 bytes).
fn block(index: u64) -> Vec<u8> {
    let mut data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    data[..8].copy_from_slice(&index.to_le_bytes());
    data
}

/// Samples a process's RSS every 20 ms until stopped; gives the peak.
fn sample_rss(pid: i32) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(common::rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    (stop, task)
}

#[tokio::test]
async fn a_200_mb_upload_and_download_keep_the_gateway_memory_flat() {
    const MIB: u64 = 1 << 20;
    const BLOCKS: u64 = 200;
    let f = Fixture::start(&[("MAX_UPLOAD_BYTES", "314572800")]).await;
    // Warm up (first-use allocations), then take the baseline.
    assert_eq!(
        f.put("warm.bin", "", vec![1u8; 1 << 20]).await.status(),
        200
    );
    let _ = f
        .get("files/content", "warm.bin")
        .await
        .bytes()
        .await
        .unwrap();
    let baseline = f.gateway.rss_kib();

    let (stop, peak) = sample_rss(f.gateway.pid());
    let mut stream = raw_request(
        &f,
        "PUT",
        "big.bin",
        &format!("content-length: {}\r\n", BLOCKS * MIB),
    )
    .await;
    let started = std::time::Instant::now();
    let template = block(0);
    for index in 0..BLOCKS {
        let mut data = template.clone();
        data[..8].copy_from_slice(&index.to_le_bytes());
        stream.write_all(&data).await.unwrap();
    }
    let head = read_head(&mut stream).await;
    let upload_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let upload_peak = peak.await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        std::fs::metadata(f.dir.join("big.bin")).unwrap().len(),
        BLOCKS * MIB
    );

    let (stop, peak) = sample_rss(f.gateway.pid());
    let started = std::time::Instant::now();
    let mut response = f.get("files/content", "big.bin").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-file-size"],
        (BLOCKS * MIB).to_string()
    );
    let mut received = 0u64;
    let mut pending = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        pending.extend_from_slice(&chunk);
        while pending.len() >= MIB as usize {
            let index = received / MIB;
            let rest = pending.split_off(MIB as usize);
            assert_eq!(&pending[..8], &index.to_le_bytes(), "block {index}");
            assert!(pending[8..] == template[8..], "block {index}");
            received += MIB;
            pending = rest;
        }
    }
    let download_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let download_peak = peak.await.unwrap();
    assert_eq!(received + pending.len() as u64, BLOCKS * MIB);

    eprintln!(
        "gateway RSS: baseline {} MiB, peak during a 200 MB upload {} MiB ({upload_secs:.1} s), \
         during the download {} MiB ({download_secs:.1} s)",
        baseline / 1024,
        upload_peak / 1024,
        download_peak / 1024
    );
    for (what, peak) in [("upload", upload_peak), ("download", download_peak)] {
        assert!(
            peak < baseline + 32 * 1024,
            "the gateway grew from {baseline} KiB to {peak} KiB during the {what}"
        );
    }
}

#[tokio::test]
async fn an_upload_that_keeps_arriving_outlives_the_body_deadline_and_a_stalled_one_does_not() {
    let f = Fixture::start(&[("HTTP_BODY_TIMEOUT_SECS", "1")]).await;
    // 3 s in all, but 128 KiB every 300 ms: the deadline moves on.
    const PARTS: u64 = 10;
    let part = vec![3u8; 128 * 1024];
    let length = PARTS * part.len() as u64;
    let mut stream = raw_request(
        &f,
        "PUT",
        "slow.bin",
        &format!("content-length: {length}\r\n"),
    )
    .await;
    for _ in 0..PARTS {
        stream.write_all(&part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        std::fs::metadata(f.dir.join("slow.bin")).unwrap().len(),
        length
    );

    // A body that stops arriving is 408, and nothing is written.
    let mut stream = raw_request(&f, "PUT", "stalled.bin", "content-length: 1048576\r\n").await;
    stream.write_all(&part).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    common::eventually("nothing of the stalled upload is left", || async {
        !std::fs::read_dir(&f.dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy() != "slow.bin")
    })
    .await;
}
