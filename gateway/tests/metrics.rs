//! The gateway's `/metrics` through its real interfaces: a real broker
//! (PTYs and all) and a real gateway on ephemeral ports, a WebSocket
//! terminal. The endpoint needs authentication, parses as Prometheus text,
//! and its figures move with logins, terminals and the broker's health.
//! Along the way: the gateway's request id shows up in the broker's JSON log
//! of the call, and an admin notice reaches the browser's WebSocket. With
//! both processes running as binaries, one action is followed through both
//! JSON logs by its request id, and neither log holds a key or token.

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
    broker_logs: Logs,
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

type Logs = std::sync::Arc<std::sync::Mutex<String>>;

/// Starts `command` with piped output; returns the child, its first stdout
/// line stripped of `announce`, and its stderr as it accumulates.
async fn spawn_announcing(
    command: &mut tokio::process::Command,
    announce: &str,
) -> (tokio::process::Child, String, Logs) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting a dispatch process");
    let address = dispatch_testkit::launch::announced(&mut child, announce, DEADLINE)
        .await
        .expect("the process announces its address");
    let logs = Logs::default();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = std::sync::Arc::clone(&logs);
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let mut logs = collected.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    });
    (child, address, logs)
}

/// A broker process with JSON logs at `log_level` (with an empty HOME, so
/// shells start fast) on an ephemeral port.
async fn start_broker(
    root: &std::path::Path,
    log_level: &str,
) -> (tokio::process::Child, String, Logs) {
    let home = root.join("home");
    std::fs::create_dir(&home).unwrap();
    spawn_announcing(
        dispatch_testkit::launch::command(&broker_bin())
            .env("BROKER_LISTEN", "127.0.0.1:0")
            .env("BROKER_TOKEN", BROKER_TOKEN)
            .env("PTY_ROOT", root.join("sessions"))
            .env("HOME", &home)
            .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", log_level)
            .env("LOG_FORMAT", "json"),
        dispatch_testkit::announce::BROKER_LISTENING,
    )
    .await
}

/// A real broker process on an ephemeral port, and a gateway in front of it.
async fn start() -> Stack {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = tempfile::tempdir().unwrap();
    let (broker, broker_addr, broker_logs) = start_broker(root.path(), "info").await;

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
        "--state-dir",
        root.path().join("gateway-state").to_str().unwrap(),
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
            content_type.starts_with("application/openmetrics-text; version=1.0.0"),
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

/// The JSON log line of `logs` with `message` whose span carries
/// `request_id`, once it shows up.
async fn logged(logs: &Logs, message: &str, request_id: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let found = logs
            .lock()
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|json| {
                json["fields"]["message"] == message && json["span"]["request_id"] == request_id
            });
        if let Some(json) = found {
            return json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {message:?} logged for request {request_id}:\n{}",
            logs.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_action_is_followed_across_both_logs_which_hold_no_secret() {
    const WRONG_KEY: &str = "a-mistyped-key-guess-31337";
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = tempfile::tempdir().unwrap();
    // Debug level: what an operator turns on to investigate must not leak
    // secrets either.
    let level = "debug,h2=info,hyper=info,tower=info,rustls=info";
    let (_broker, broker_addr, broker_logs) = start_broker(root.path(), level).await;
    let gateway_bin = std::path::Path::new(env!("CARGO_BIN_EXE_dispatch-gateway"));
    let (_gateway, base, gateway_logs) = spawn_announcing(
        dispatch_testkit::launch::command(gateway_bin)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("TERMINAL_KEY", KEY)
            .env("BROKER_URL", format!("http://{broker_addr}"))
            .env("BROKER_TOKEN", BROKER_TOKEN)
            .env("RUST_LOG", level)
            .env("LOG_FORMAT", "json"),
        dispatch_testkit::announce::GATEWAY_LISTENING,
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(DEADLINE)
        .build()
        .unwrap();

    // Logins, wrong and right; the cookie is a secret too.
    let failed = http
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({ "key": WRONG_KEY }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let login = http
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({ "key": KEY }))
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "{}", login.status());
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let cookie_value = cookie.split_once('=').unwrap().1.to_owned();
    let listed = http
        .get(format!("{base}/api/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    // One action: creating a session, followed by its request id.
    let created = http
        .post(format!("{base}/api/sessions"))
        .bearer_auth(KEY)
        .json(&serde_json::json!({ "mode": "shell", "cols": 80, "rows": 24 }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let request_id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let session: serde_json::Value = created.json().await.unwrap();
    let id = session["id"].as_str().unwrap().to_owned();
    let at_gateway = logged(&gateway_logs, "session created", &request_id).await;
    let at_broker = logged(&broker_logs, "session created", &request_id).await;
    assert_eq!(at_gateway["fields"]["session"], id.as_str(), "{at_gateway}");
    assert_eq!(at_broker["fields"]["session"], id.as_str(), "{at_broker}");
    assert_eq!(
        at_broker["span"]["method"], "/dispatch.v1.Sessions/CreateSession",
        "{at_broker}"
    );

    // An admin call with its own token.
    let output = tokio::process::Command::new(broker_bin())
        .args(["admin", "--broker", &broker_addr, "list"])
        .env("BROKER_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let refused = tokio::process::Command::new(broker_bin())
        .args(["admin", "--broker", &broker_addr, "list"])
        .env("BROKER_ADMIN_TOKEN", WRONG_KEY)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let ended = http
        .delete(format!("{base}/api/sessions/{id}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    logged(
        &broker_logs,
        "admin call refused: missing or wrong admin token",
        "",
    )
    .await;

    let logs = format!(
        "{}\n{}",
        gateway_logs.lock().unwrap(),
        broker_logs.lock().unwrap()
    );
    for secret in [KEY, BROKER_TOKEN, ADMIN_TOKEN, WRONG_KEY, &cookie_value] {
        assert!(!logs.contains(secret), "{secret:?} logged:\n{logs}");
    }
}
