//! The broker's observability through its real interfaces: `/metrics` on
//! BROKER_METRICS_LISTEN parses as OpenMetrics text, reports the
//! conversation index's size and moves when a session runs; JSON logs carry
//! the caller's `x-request-id` and no secret.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{DEADLINE, TOKEN, Viewer};
use dispatch_broker::ListenAddr;
use dispatch_broker::client::{self, BearerToken};
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::sessions_client::SessionsClient;
use dispatch_testkit::announce;
use dispatch_testkit::prometheus::{self, Exposition};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const ADMIN_TOKEN: &str = "metrics-admin-secret-42";

/// A broker with metrics on an ephemeral port and JSON logs collected.
struct ObservedBroker {
    _child: Child,
    _root: tempfile::TempDir,
    addr: ListenAddr,
    metrics: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// The Claude Code home the broker indexes.
    claude_home: dispatch_testkit::Manifest,
}

async fn start() -> ObservedBroker {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let claude_home = dispatch_testkit::generate(
        &home.join(".claude"),
        &dispatch_testkit::Spec {
            conversations: 3,
            projects: 2,
            damage: false,
            ..dispatch_testkit::Spec::default()
        },
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch-broker"))
        .env("BROKER_LISTEN", "127.0.0.1:0")
        .env("BROKER_TOKEN", TOKEN)
        .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BROKER_METRICS_LISTEN", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("PTY_ROOT", root.path().join("sessions"))
        .env("HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = Arc::clone(&logs);
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            collected.lock().unwrap().push(line);
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut metrics) = (None, None);
    while addr.is_none() || metrics.is_none() {
        let line = tokio::time::timeout(DEADLINE, stdout.next_line())
            .await
            .expect("broker announces its addresses")
            .unwrap()
            .expect("broker printed its addresses");
        if let Some(a) = announce::broker_address(&line) {
            addr = Some(a.parse().unwrap());
        } else if let Some(m) = announce::broker_metrics_address(&line) {
            metrics = Some(m.to_owned());
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    ObservedBroker {
        _child: child,
        _root: root,
        addr: addr.unwrap(),
        metrics: metrics.unwrap(),
        logs,
        claude_home,
    }
}

/// `GET path` over plain HTTP/1.1; the head (status line first) and the body.
async fn http_get(addr: &str, path: &str) -> (String, String) {
    http_request(addr, "GET", path).await
}

/// `method path` over plain HTTP/1.1; the head and the body.
async fn http_request(addr: &str, method: &str, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .expect("metrics answer in time")
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_owned(), body.to_owned())
}

async fn scrape(broker: &ObservedBroker) -> Exposition {
    let (head, body) = http_get(&broker.metrics, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    prometheus::parse(&body).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{body}"))
}

/// Scrapes until `ready` holds; the last scrape either way (DEADLINE).
async fn scrape_until(broker: &ObservedBroker, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let metrics = scrape(broker).await;
        if ready(&metrics) || tokio::time::Instant::now() >= deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_parse_and_move_when_a_session_runs() {
    let broker = start().await;
    let before = scrape(&broker).await;
    assert_eq!(
        before.get("dispatch_broker_sessions_running", &[]),
        Some(0.0)
    );
    assert_eq!(before.types["dispatch_broker_sessions_created"], "counter");
    assert_eq!(
        before.get(
            "dispatch_broker_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    let channel = client::connect(&broker.addr).await.unwrap();
    let mut client = SessionsClient::with_interceptor(channel, BearerToken::new(TOKEN).unwrap());
    let session = common::create_shell(&mut client, 80, 24).await;
    let mut viewer = Viewer::attach(&mut client, &session.id, 80, 24, true).await;
    viewer.input("echo metrics-$((40+2))\n").await;
    viewer.wait_for_output("metrics-42").await;

    // The input counter moves once the write returns, which can trail the
    // shell's answer on a loaded machine: scrape until it has.
    let input_bytes = "dispatch_broker_pty_input_bytes_total";
    let during = scrape_until(&broker, |m| {
        m.get(input_bytes, &[]).unwrap() - before.get(input_bytes, &[]).unwrap() >= 20.0
    })
    .await;
    let moved = |name: &str| during.get(name, &[]).unwrap() - before.get(name, &[]).unwrap();
    assert_eq!(moved("dispatch_broker_sessions_created_total"), 1.0);
    assert_eq!(
        during.get("dispatch_broker_sessions_running", &[]),
        Some(1.0)
    );
    assert_eq!(during.get("dispatch_broker_viewers", &[]), Some(1.0));
    assert!(moved(input_bytes) >= 20.0);
    assert!(moved("dispatch_broker_pty_output_bytes_total") > 0.0);
    assert_eq!(
        during.types["dispatch_broker_grpc_request_duration_seconds"],
        "histogram"
    );
    let create = [("method", "/dispatch.v1.Sessions/CreateSession")];
    assert_eq!(
        during.get(
            "dispatch_broker_grpc_request_duration_seconds_count",
            &create
        ),
        Some(1.0)
    );
    assert!(
        during
            .get("dispatch_broker_grpc_request_duration_seconds_sum", &create)
            .unwrap()
            > 0.0
    );

    client
        .end_session(pb::EndSessionRequest {
            id: session.id.clone(),
        })
        .await
        .unwrap();
    let after = scrape(&broker).await;
    assert_eq!(
        after.get("dispatch_broker_sessions_running", &[]),
        Some(0.0)
    );
    assert_eq!(
        after.get("dispatch_broker_sessions_retained", &[]),
        Some(1.0)
    );
    assert_eq!(
        after
            .get("dispatch_broker_sessions_ended_total", &[])
            .unwrap()
            - before
                .get("dispatch_broker_sessions_ended_total", &[])
                .unwrap(),
        1.0
    );

    let (head, _) = http_get(&broker.metrics, "/other").await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    let (head, body) = http_request(&broker.metrics, "HEAD", "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.is_empty(), "{body}");
    let (head, _) = http_request(&broker.metrics, "POST", "/metrics").await;
    assert!(
        head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
}

#[tokio::test]
async fn metrics_report_the_conversation_index_size() {
    let broker = start().await;
    let expected = &broker.claude_home;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let metrics = loop {
        let metrics = scrape(&broker).await;
        if metrics.get("dispatch_broker_conversation_scans_total", &[]) >= Some(1.0) {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index never finished a scan"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        metrics.get("dispatch_broker_conversations", &[]),
        Some(expected.conversations.len() as f64)
    );
    assert_eq!(
        metrics.get("dispatch_broker_conversation_transcripts", &[]),
        Some(f64::from(expected.transcripts))
    );
    assert_eq!(
        metrics.get("dispatch_broker_conversation_bytes", &[]),
        Some(expected.total_bytes as f64)
    );
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_no_secret() {
    let broker = start().await;
    let channel = client::connect(&broker.addr).await.unwrap();
    let mut client = SessionsClient::with_interceptor(channel, BearerToken::new(TOKEN).unwrap());
    let mut request = tonic::Request::new(pb::CreateSessionRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "req-7f3a-follow-me".parse().unwrap());
    let session = client.create_session(request).await.unwrap().into_inner();

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let line = loop {
        let found = broker
            .logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("session created") && l.contains(&session.id))
            .cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 'session created' log line"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(json["span"]["request_id"], "req-7f3a-follow-me", "{line}");
    assert_eq!(
        json["span"]["method"],
        "/dispatch.v1.Sessions/CreateSession"
    );
    let logs = broker.logs.lock().unwrap().join("\n");
    assert!(
        !logs.contains(TOKEN) && !logs.contains(ADMIN_TOKEN),
        "{logs}"
    );
}
