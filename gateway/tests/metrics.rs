//! The gateway's `/metrics` through its real interfaces: a real broker
//! (PTYs and all) and a real gateway on ephemeral ports, a WebSocket
//! terminal. The endpoint needs authentication, parses as Prometheus text,
//! and its figures move with logins, terminals and the broker's health.
//! Along the way: the gateway's request id shows up in the broker's JSON log
//! of the call, and an admin notice reaches the browser's WebSocket.

use std::time::Duration;

use clap::Parser;
use dispatch_gateway::{Config, Gateway};
use dispatch_testkit::prometheus::{self, Exposition};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const KEY: &str = "metrics-test-key-0123456789";
const BROKER_TOKEN: &str = "metrics-broker-token-0123";
const ADMIN_TOKEN: &str = "metrics-admin-token-4567";
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

struct Stack {
    base: String,
    http: reqwest::Client,
    broker: tokio::process::Child,
    broker_addr: String,
    broker_logs: std::sync::Arc<std::sync::Mutex<String>>,
    _root: tempfile::TempDir,
}

/// `dispatch-broker` from `DISPATCH_BROKER_BIN`, else beside this test's
/// target directory (built by `cargo build -p dispatch-broker` if missing).
fn broker_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("DISPATCH_BROKER_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("dispatch-broker");
    if !bin.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "dispatch-broker"])
            .status()
            .expect("running cargo build -p dispatch-broker");
        assert!(status.success(), "cargo build -p dispatch-broker failed");
    }
    bin
}

/// A real broker process (with an empty HOME, so shells start fast) on an
/// ephemeral port, and a gateway in front of it.
async fn start() -> Stack {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut broker = tokio::process::Command::new(broker_bin())
        .env("BROKER_LISTEN", "127.0.0.1:0")
        .env("BROKER_TOKEN", BROKER_TOKEN)
        .env("PTY_ROOT", root.path().join("sessions"))
        .env("HOME", &home)
        .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting dispatch-broker");
    let mut lines = BufReader::new(broker.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the broker announces its address")
        .unwrap()
        .unwrap();
    let broker_addr = line
        .strip_prefix("dispatch-broker listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let broker_logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = BufReader::new(broker.stderr.take().unwrap()).lines();
    let logs = std::sync::Arc::clone(&broker_logs);
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let mut logs = logs.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    });

    let cli = Cli::try_parse_from([
        "dispatch-gateway",
        "--port",
        "0",
        "--terminal-key",
        KEY,
        "--broker-url",
        &format!("http://{broker_addr}"),
        "--broker-token",
        BROKER_TOKEN,
    ])
    .unwrap();
    let gateway = Gateway::new(cli.config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gateway.serve(listener));
    Stack {
        base,
        http: reqwest::Client::builder()
            .timeout(DEADLINE)
            .build()
            .unwrap(),
        broker,
        broker_addr,
        broker_logs,
        _root: root,
    }
}

impl Stack {
    async fn scrape(&self) -> Exposition {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let body = response.text().await.unwrap();
        prometheus::parse(&body).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{body}"))
    }
}

fn value(metrics: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .get(name, labels)
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

#[tokio::test]
async fn metrics_need_authentication_and_move_with_use() {
    let mut stack = start().await;
    let anonymous = stack
        .http
        .get(format!("{}/metrics", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let before = stack.scrape().await;
    assert_eq!(value(&before, "dispatch_gateway_broker_up", &[]), 1.0);
    assert_eq!(
        before.types["dispatch_gateway_http_request_duration_seconds"],
        "histogram"
    );

    // A failed login.
    let failed = stack
        .http
        .post(format!("{}/api/login", stack.base))
        .json(&serde_json::json!({"key": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

    // A terminal: create, attach over WebSocket, type, read the echo.
    let response = stack
        .http
        .post(format!("{}/api/sessions", stack.base))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"mode": "shell", "cols": 80, "rows": 24}))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["id"].as_str().expect("a session id").to_owned();
    let url = format!(
        "{}/ws/sessions/{id}?cols=80&rows=24",
        stack.base.replace("http", "ws")
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // Type once the terminal is attached (its first control message).
    tokio::time::timeout(DEADLINE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) if text.contains("\"attached\"") => break,
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the terminal attaches");
    socket
        .send(Message::binary(b"echo gateway-$((6*7))\n".to_vec()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while !String::from_utf8_lossy(&seen).contains("gateway-42") {
            match socket.next().await {
                Some(Ok(Message::Binary(data))) => seen.extend_from_slice(&data),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no echo; got {:?}", String::from_utf8_lossy(&seen)));

    // The gateway's request id reached the broker's log of that call.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let logs = stack.broker_logs.lock().unwrap().clone();
        let line = logs
            .lines()
            .find(|l| l.contains("session created") && l.contains(&id));
        if let Some(line) = line {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(json["span"]["request_id"], request_id.as_str(), "{line}");
            assert!(!logs.contains(KEY) && !logs.contains(BROKER_TOKEN));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 'session created' log:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An operator notice sent with the admin client reaches the browser.
    let output = tokio::process::Command::new(broker_bin())
        .args([
            "admin",
            "--broker",
            &stack.broker_addr,
            "notice",
            &id,
            "hello",
            "from",
            "ops",
        ])
        .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::timeout(DEADLINE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) if text.contains("\"notice\"") => {
                    let notice: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(notice["text"], "hello from ops");
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the notice reaches the browser");

    let during = stack.scrape().await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&during, name, labels) - value(&before, name, labels)
    };
    let terminal = [("kind", "terminal")];
    assert_eq!(moved("dispatch_gateway_login_failures_total", &[]), 1.0);
    assert_eq!(
        moved("dispatch_gateway_websockets_opened_total", &terminal),
        1.0
    );
    assert_eq!(moved("dispatch_gateway_websockets_open", &terminal), 1.0);
    assert!(moved("dispatch_gateway_terminal_bytes_received_total", &[]) >= 22.0);
    assert!(moved("dispatch_gateway_terminal_bytes_sent_total", &[]) >= seen.len() as f64);
    assert!(moved("dispatch_gateway_http_responses_total", &[("code", "2xx")]) >= 2.0);
    assert!(moved("dispatch_gateway_http_responses_total", &[("code", "4xx")]) >= 1.0);
    assert!(moved("dispatch_gateway_http_request_duration_seconds_count", &[]) >= 4.0);

    socket.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = stack.scrape().await;
        if value(&now, "dispatch_gateway_websockets_open", &terminal)
            == value(&before, "dispatch_gateway_websockets_open", &terminal)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed socket is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The broker goes away: the gateway says so.
    stack.broker.kill().await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = stack.scrape().await;
        if value(&now, "dispatch_gateway_broker_up", &[]) == 0.0 {
            assert!(value(&now, "dispatch_gateway_broker_unreachable_total", &[]) >= 1.0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker still reported up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
