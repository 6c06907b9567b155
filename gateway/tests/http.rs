//! The gateway's HTTP surface against a real broker: authentication (the 401
//! walk over the route table, login, logout, cookies), Origin checks, login
//! rate limiting, REST errors and limits, the UI and its security headers,
//! health, and the refusal to start with the default key off loopback.

mod common;

use std::time::Duration;

use common::*;
use dispatch_gateway::routes::{Audience, ROUTES};
use tokio_tungstenite::tungstenite;

const SOME_ID: &str = "7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01";

#[tokio::test(flavor = "multi_thread")]
async fn every_protected_route_answers_401_without_credentials() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let client = http();
    // No credential at all: wrong ones would spend the shared failure budget
    // (429 after a few); refusing those is tested on its own.
    let protected: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.audience == Audience::Authenticated)
        .collect();
    assert!(protected.len() >= 8, "the route table lists the API");
    for route in protected {
        let path = route.path.replace("{id}", SOME_ID);
        if route.websocket {
            match ws_connect(&gateway, &path, None, None).await {
                Err(tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 401, "{path}");
                    let body =
                        String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                            .to_string();
                    assert!(body.contains("authentication required"), "{path}: {body}");
                }
                other => panic!("{path}: upgrade without credentials gave {other:?}"),
            }
            continue;
        }
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
        let response = client
            .request(method, gateway.url(&path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{} {path}", route.method);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "authentication required");
    }
    // The same routes answer with credentials (no 401 anywhere).
    let response = client
        .get(gateway.url("/api/sessions"))
        .header("authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_cookie_and_logout() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("TRUST_PROXY", "loopback")]).await;
    let client = http();
    let wrong = client
        .post(gateway.url("/api/login"))
        .json(&serde_json::json!({"key": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid key"
    );
    let bad = client
        .post(gateway.url("/api/login"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let response = client
        .post(gateway.url("/api/login"))
        .json(&serde_json::json!({"key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in [
        "dispatch_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: no Secure flag");
    assert!(!set_cookie.contains(KEY), "the cookie is not the key");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let list = client
        .get(gateway.url("/api/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    // HTTPS through a trusted proxy makes the cookie Secure.
    let proxied = client
        .post(gateway.url("/api/login"))
        .header("x-forwarded-proto", "https")
        .json(&serde_json::json!({"key": KEY}))
        .send()
        .await
        .unwrap();
    assert!(
        proxied.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );

    // Logout revokes the token, and a WebSocket holding it is closed with 4401.
    let mut events = ws_connect(&gateway, "/ws/events", Some(&cookie), None)
        .await
        .unwrap();
    let logout = client
        .post(gateway.url("/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = client
        .get(gateway.url("/api/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    assert_eq!(close_code(&mut events).await, Some(4401));
}

async fn close_code(socket: &mut Socket) -> Option<u16> {
    use futures::StreamExt;
    tokio::time::timeout(DEADLINE, async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("socket closes")
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_requests_are_refused() {
    let broker = BrokerProc::start().await;
    let gateway =
        GatewayProc::start(&broker, &[("ALLOWED_ORIGINS", "https://term.example.com")]).await;
    let cookie = login(&gateway).await;
    let own = format!("http://{}", gateway.addr);
    let other_port = format!("http://127.0.0.1:{}", gateway.addr.port() + 1);
    for evil in ["http://evil.example", other_port.as_str(), "null"] {
        match ws_connect(&gateway, "/ws/events", Some(&cookie), Some(evil)).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403, "{evil}"),
            other => panic!("{evil}: cross-site upgrade gave {other:?}"),
        }
        let post = http()
            .post(gateway.url("/api/sessions"))
            .header("cookie", &cookie)
            .header("origin", evil)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 403, "{evil}");
        assert_eq!(
            post.json::<serde_json::Value>().await.unwrap()["error"],
            "origin not allowed"
        );
    }
    for good in [own.as_str(), "https://term.example.com"] {
        ws_connect(&gateway, "/ws/events", Some(&cookie), Some(good))
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_rate_limited() {
    let broker = BrokerProc::start().await;
    let gateway =
        GatewayProc::start(&broker, &[("LOGIN_BURST", "3"), ("LOGIN_REFILL_SECS", "5")]).await;
    let client = http();
    let attempt = |key: &'static str| {
        client
            .post(gateway.url("/api/login"))
            .json(&serde_json::json!({"key": key}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong").await.unwrap().status(), 401);
    }
    let limited = attempt("wrong").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        attempt(KEY).await.unwrap().status(),
        429,
        "even the right key waits"
    );
    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(200)).await;
    assert_eq!(
        attempt(KEY).await.unwrap().status(),
        204,
        "the real user is back in seconds"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_sessions_errors_and_limits() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let cookie = login(&gateway).await;
    let client = http();
    let session = create_session(
        &gateway,
        &cookie,
        serde_json::json!({"mode": "shell", "cols": 100, "rows": 30, "name": "build"}),
    )
    .await;
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(session["name"], "build");
    assert_eq!(session["mode"], "shell");
    assert_eq!(session["status"], "running");
    assert_eq!(session["cols"], 100);

    let list: serde_json::Value = client
        .get(gateway.url("/api/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str())
    );

    let renamed = client
        .patch(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &cookie)
        .json(&serde_json::json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let got: serde_json::Value = client
        .get(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "renamed");

    let status = |r: reqwest::Response| r.status().as_u16();
    let get = |path: String| {
        client
            .get(gateway.url(&path))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(
        status(get("/api/sessions/not-a-uuid".into()).await.unwrap()),
        400
    );
    assert_eq!(
        status(get(format!("/api/sessions/{SOME_ID}")).await.unwrap()),
        404
    );
    let post = |body: String| {
        client
            .post(gateway.url("/api/sessions"))
            .header("cookie", &cookie)
            .body(body)
            .send()
    };
    assert_eq!(status(post("{not json".into()).await.unwrap()), 400);
    assert_eq!(
        status(post(r#"{"mode":"fish"}"#.into()).await.unwrap()),
        400
    );
    assert_eq!(
        status(
            post(format!(r#"{{"name":"{}"}}"#, "x".repeat(200)))
                .await
                .unwrap()
        ),
        400
    );
    let huge = post(format!(r#"{{"name":"{}"}}"#, "x".repeat(100 * 1024)))
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    assert!(huge.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    let ended = client
        .delete(gateway.url(&format!("/api/sessions/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    eventually("session listed as exited", || async {
        let got: serde_json::Value = get(format!("/api/sessions/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        got["status"] == "exited"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_health_and_security_headers() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    let client = http();
    for path in ["/", "/sessions/some/client/route"] {
        let page = client.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let headers = page.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(
            headers["content-security-policy"],
            dispatch_gateway::assets::CSP
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-cache");
        let body = page.text().await.unwrap();
        assert!(!body.contains("<script>"), "no inline script");
    }
    let health = client.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    wait_ready(&gateway, "readyz answers ready").await;
    let public: serde_json::Value = client
        .get(gateway.url("/public-url"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public, serde_json::json!({"url": null}));

    let ok = std::process::Command::new(gateway_bin())
        .arg("healthcheck")
        .env("PORT", gateway.addr.port().to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "healthcheck against a live gateway");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = std::process::Command::new(gateway_bin())
        .arg("healthcheck")
        .env("PORT", free.to_string())
        .status()
        .unwrap();
    assert!(!down.success(), "healthcheck with nothing listening");
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_the_default_key() {
    for (env, message) in [
        (
            vec![("HOST", "0.0.0.0"), ("TERMINAL_KEY", "change-me")],
            "TERMINAL_KEY must be set when binding",
        ),
        (
            vec![("HOST", "0.0.0.0"), ("TERMINAL_KEY", "")],
            "TERMINAL_KEY must be set when binding",
        ),
        (
            vec![("ENABLE_TUNNEL", "true"), ("TERMINAL_KEY", "change-me")],
            "ERROR: TERMINAL_KEY must be set when ENABLE_TUNNEL=true for security",
        ),
    ] {
        let output = gateway_command(&env)
            .env("BROKER_URL", "unix:/nonexistent/broker.sock")
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{env:?} must refuse to start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{env:?}: {stderr}");
    }
    // On loopback too, the example key is refused (a missing key is generated).
    let output = gateway_command(&[
        ("TERMINAL_KEY", "change-me"),
        ("BROKER_URL", "unix:/nonexistent/broker.sock"),
    ])
    .stderr(std::process::Stdio::piped())
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("well-known example key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_format_is_text_or_json_for_every_subcommand() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let healthcheck = |env: &[(&str, &str)], args: &[&str]| {
        let mut command = gateway_command(env);
        command
            .arg("healthcheck")
            .args(args)
            .env("PORT", free.to_string())
            .stderr(std::process::Stdio::piped());
        command
    };
    // An unknown format is refused by name, before anything runs.
    let output = healthcheck(&[("LOG_FORMAT", "yaml")], &[])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'yaml'") && stderr.contains("--log-format"),
        "{stderr}"
    );
    // The flag is the binary's, so a subcommand takes it too (as the broker's
    // does); the health check then just finds nothing listening.
    let output = healthcheck(&[], &["--log-format", "json"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mode_supervises_a_broker_without_the_key() {
    let bin = broker_bin();
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("sessions");
    std::fs::create_dir(&root).unwrap();
    let gateway = GatewayProc::start_with(&[
        ("BROKER_BIN", bin.to_str().unwrap()),
        ("PTY_ROOT", root.to_str().unwrap()),
    ])
    .await;
    wait_ready(&gateway, "the local broker becomes ready").await;
    let cookie = login(&gateway).await;
    create_session(&gateway, &cookie, serde_json::json!({})).await;
    let child = children_of(gateway.pid())
        .into_iter()
        .next()
        .expect("a broker child");
    let environ = std::fs::read(format!("/proc/{child}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains("TERMINAL_KEY"),
        "the broker never sees the key"
    );
    assert!(!environ.contains(KEY));
    assert!(environ.contains("BROKER_LISTEN=unix:"));

    // Killed, it is restarted; the gateway becomes ready again.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("a new broker child", || async {
        children_of(gateway.pid()).iter().any(|pid| *pid != child)
    })
    .await;
    wait_ready(&gateway, "ready again").await;
    let pid = gateway.pid();
    let broker = children_of(pid)[0];
    let mut gateway = gateway;
    let state_dir = gateway.state_dir.take().unwrap();
    let status = gateway.stop().await;
    assert!(status.success(), "clean exit: {status:?}");
    // The broker outlives its gateway (tests/local_restart.rs) until
    // `dispatch-gateway stop`.
    assert!(dispatch_gateway::local_broker::is_broker(broker));
    let stopped = gateway_command(&[("STATE_DIR", state_dir.path().to_str().unwrap())])
        .arg("stop")
        .output()
        .await
        .unwrap();
    assert!(stopped.status.success());
    assert!(!dispatch_gateway::local_broker::is_broker(broker));
}

fn children_of(parent: i32) -> Vec<i32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit(')').next().unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.first() != Some(&"Z")
            && fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent)
        {
            children.push(pid);
        }
    }
    children
}

/// The harness starts every gateway without the machine's settings: the
/// names it clears come from the binary's own `--help`, so a setting is
/// cleared from the day it is added.
#[test]
fn the_launcher_clears_every_gateway_setting() {
    let names = dispatch_testkit::launch::variables_of(&gateway_bin());
    for name in [
        "TERMINAL_KEY",
        "BROKER_URL",
        "BROKER_TOKEN",
        "BROKER_BIN",
        "STATE_DIR",
        "HOST",
        "PORT",
        "ENABLE_TUNNEL",
        "PUBLIC_HOSTS",
        "ALLOWED_ORIGINS",
        "EGRESS_LISTEN",
        "LOG_FORMAT",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
}
