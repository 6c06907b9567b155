//! The gateway's authentication defences, each through real processes: the
//! failure budget shared by every place a credential is presented, the Host
//! check against DNS rebinding, the key policy, the client address behind a
//! trusted proxy, the Argon2id-derived cookie secret, revocations that
//! survive a restart, and every stream ending at logout and at expiry.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use hmac::{Hmac, Mac};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A gateway whose stderr (its log) is collected.
struct Logged {
    gateway: GatewayProc,
    log: Arc<Mutex<String>>,
    _state: tempfile::TempDir,
}

impl Logged {
    async fn start(broker: &BrokerProc, env: &[(&str, &str)]) -> Self {
        let state = tempfile::tempdir().unwrap();
        let mut command = gateway_command(env);
        command
            .env("BROKER_URL", &broker.url)
            .env("BROKER_TOKEN", &broker.token)
            .env("STATE_DIR", state.path())
            .stderr(std::process::Stdio::piped());
        let mut gateway = GatewayProc::spawn(command).await;
        let stderr = gateway.child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            gateway,
            log,
            _state: state,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// A request from client `ip`, as a trusted proxy on loopback reports it.
fn from(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    ip: &str,
) -> reqwest::RequestBuilder {
    client.request(method, url).header("x-forwarded-for", ip)
}

/// The status of a WebSocket upgrade to `path` with these headers.
async fn upgrade_status(gateway: &GatewayProc, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = gateway.ws_url(path).into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("upgrade failed without an HTTP answer: {other}"),
    }
}

async fn failures_counted(gateway: &GatewayProc, ip: &str) -> f64 {
    let response = from(&http(), reqwest::Method::GET, gateway.url("/metrics"), ip)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let exposition = dispatch_testkit::prometheus::parse(&text).unwrap();
    exposition
        .get("dispatch_gateway_login_failures_total", &[])
        .expect("the failure counter")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_wrong_credential_spends_the_login_budget() {
    const GUESS: &str = "guessed-key-7d41aa93";
    const FORGED: &str = "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.Zm9yZ2VkLW1hYy1ieXRlcw";
    let broker = BrokerProc::start().await;
    let logged = Logged::start(
        &broker,
        &[
            ("LOGIN_BURST", "4"),
            ("LOGIN_REFILL_SECS", "3600"),
            ("TRUST_PROXY", "loopback"),
        ],
    )
    .await;
    let gateway = &logged.gateway;
    let client = http();
    let guesser = "203.0.113.7";
    let before = failures_counted(gateway, "203.0.113.99").await;

    // A request without any credential is not a guess.
    for _ in 0..6 {
        let response = from(
            &client,
            reqwest::Method::GET,
            gateway.url("/api/sessions"),
            guesser,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), 401);
    }
    // Four wrong credentials, in four places.
    let wrong = [
        from(
            &client,
            reqwest::Method::GET,
            gateway.url("/api/sessions"),
            guesser,
        )
        .bearer_auth(GUESS),
        from(
            &client,
            reqwest::Method::GET,
            gateway.url("/metrics"),
            guesser,
        )
        .bearer_auth(GUESS),
        from(
            &client,
            reqwest::Method::GET,
            gateway.url("/api/conversations"),
            guesser,
        )
        .header("cookie", format!("dispatch_session={FORGED}")),
    ];
    for (request, clears_cookie) in wrong.into_iter().zip([false, false, true]) {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        // A refused cookie is cleared: a browser spends one failure on it.
        let cleared = response
            .headers()
            .get("set-cookie")
            .is_some_and(|c| c.to_str().unwrap().starts_with("dispatch_session=;"));
        assert_eq!(cleared, clears_cookie);
    }
    let bearer = format!("Bearer {GUESS}");
    let ws_headers = [
        ("x-forwarded-for", guesser),
        ("authorization", bearer.as_str()),
    ];
    assert_eq!(
        upgrade_status(gateway, "/ws/events", &ws_headers).await,
        401
    );

    // The budget is spent: even the right key is refused, everywhere.
    let response = from(
        &client,
        reqwest::Method::GET,
        gateway.url("/api/sessions"),
        guesser,
    )
    .bearer_auth(KEY)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("too many"),
        "{body}"
    );
    let login = from(
        &client,
        reqwest::Method::POST,
        gateway.url("/api/login"),
        guesser,
    )
    .json(&serde_json::json!({ "key": KEY }))
    .send()
    .await
    .unwrap();
    assert_eq!(login.status(), 429);
    let key_header = format!("Bearer {KEY}");
    let ws_headers = [
        ("x-forwarded-for", guesser),
        ("authorization", key_header.as_str()),
    ];
    assert_eq!(
        upgrade_status(gateway, "/ws/events", &ws_headers).await,
        429
    );

    // Another client is not affected; the failures were counted and logged.
    let after = failures_counted(gateway, "203.0.113.99").await;
    assert_eq!(after - before, 7.0, "4 wrong credentials and 3 refusals");
    let log = logged.log();
    let logged_failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("wrong credential") && l.contains(guesser))
        .collect();
    assert_eq!(logged_failures.len(), 4, "{log}");
    assert!(logged_failures.iter().any(|l| l.contains("bearer")));
    assert!(logged_failures.iter().any(|l| l.contains("cookie")));
    for secret in [GUESS, FORGED, KEY] {
        assert!(!log.contains(secret), "the log holds a secret: {log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_host_is_refused_before_anything_else() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(
        &broker,
        &[
            ("PUBLIC_HOSTS", "term.example.com"),
            ("ALLOWED_ORIGINS", "https://ui.example.org"),
        ],
    )
    .await;
    let port = gateway.addr.port();
    let client = http();
    let login_as = |host: String| {
        let origin = format!("http://{host}");
        client
            .post(gateway.url("/api/login"))
            .header("host", host)
            .header("origin", origin)
            .json(&serde_json::json!({ "key": KEY }))
            .send()
    };
    // A rebinding page: its own name in Host and Origin.
    let response = login_as(format!("attacker.example:{port}")).await.unwrap();
    assert_eq!(response.status(), 421);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("PUBLIC_HOSTS"),
        "{body}"
    );
    for path in ["/healthz", "/", "/api/sessions"] {
        let response = client
            .get(gateway.url(path))
            .header("host", "attacker.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 421, "{path}");
    }
    // The names the gateway answers to.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "term.example.com".to_string(),
        "ui.example.org".to_string(),
    ] {
        assert_eq!(
            login_as(host.clone()).await.unwrap().status(),
            204,
            "{host}"
        );
    }
    // A WebSocket upgrade with a good cookie but a rebinding Host.
    let cookie = login(&gateway).await;
    let mut request = format!("ws://attacker.example:{port}/ws/events")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let origin = format!("http://attacker.example:{port}");
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 421),
        other => panic!("expected 421, got {:?}", other.map(|_| ())),
    }
    // A request without any Host.
    let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status_line = answer.lines().next().unwrap_or_default();
    assert!(status_line.contains(" 421"), "{answer}");
}

/// Runs a gateway that must refuse to start; returns its stderr.
async fn refused(env: &[(&str, &str)]) -> String {
    let output = gateway_command(env)
        .env("BROKER_URL", "unix:/nonexistent/broker.sock")
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "{env:?} must refuse to start: {stderr}"
    );
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn weak_keys_are_refused_and_a_missing_one_is_generated() {
    let stderr = refused(&[("TERMINAL_KEY", "change-me")]).await;
    assert!(stderr.contains("well-known example key"), "{stderr}");
    for env in [
        [("HOST", "0.0.0.0"), ("TERMINAL_KEY", "fifteen-chars-k")],
        [
            ("ENABLE_TUNNEL", "true"),
            ("TERMINAL_KEY", "fifteen-chars-k"),
        ],
    ] {
        let stderr = refused(&env).await;
        assert!(
            stderr.contains("TERMINAL_KEY has 15 characters; at least 16 are required"),
            "{env:?}: {stderr}"
        );
    }
    let stderr = refused(&[("ENABLE_TUNNEL", "true"), ("TERMINAL_KEY", "")]).await;
    assert!(
        stderr.contains("ERROR: TERMINAL_KEY must be set when ENABLE_TUNNEL=true for security")
    );

    // Without a key on loopback: a strong one, printed once on stderr.
    let broker = BrokerProc::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut command = gateway_command(&[
        ("BROKER_URL", &broker.url),
        ("BROKER_TOKEN", &broker.token),
        ("STATE_DIR", state.path().to_str().unwrap()),
    ]);
    command
        .env_remove("TERMINAL_KEY")
        .stderr(std::process::Stdio::piped());
    let mut gateway = GatewayProc::spawn(command).await;
    let mut stderr = BufReader::new(gateway.child.stderr.take().unwrap()).lines();
    let key = tokio::time::timeout(DEADLINE, async {
        loop {
            let line = stderr.next_line().await.unwrap().expect("a key line");
            if let Some((_, key)) = line.split_once("(shown once): ") {
                return key.trim().to_string();
            }
        }
    })
    .await
    .expect("the generated key on stderr");
    assert!(key.len() >= 24 && key != "change-me", "{key}");
    let login_with = |key: &str| {
        http()
            .post(gateway.url("/api/login"))
            .json(&serde_json::json!({ "key": key }))
            .send()
    };
    assert_eq!(login_with("change-me").await.unwrap().status(), 401);
    assert_eq!(login_with(&key).await.unwrap().status(), 204);
    gateway.child.kill().await.unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.push_str(&line);
    }
    assert!(!rest.contains(&key), "printed once: {rest}");

    // A short key on loopback is the user's choice.
    let gateway = GatewayProc::start(&broker, &[("TERMINAL_KEY", "short")]).await;
    let response = http()
        .post(gateway.url("/api/login"))
        .json(&serde_json::json!({ "key": "short" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_the_client_cannot_choose_its_address() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(
        &broker,
        &[
            ("TRUST_PROXY", "true"),
            ("LOGIN_BURST", "3"),
            ("LOGIN_REFILL_SECS", "3600"),
        ],
    )
    .await;
    let client = http();
    let wrong_login = |forwarded: String| {
        client
            .post(gateway.url("/api/login"))
            .header("x-forwarded-for", forwarded)
            .json(&serde_json::json!({ "key": "wrong-key-guess-000" }))
            .send()
    };
    // The proxy appends the address it was reached from; the client writes
    // whatever it likes to the left of it.
    for i in 0..3 {
        let status = wrong_login(format!("198.51.100.{i}, 192.0.2.9"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "guess {i}");
    }
    let status = wrong_login("198.51.100.77, 192.0.2.9".into())
        .await
        .unwrap()
        .status();
    assert_eq!(
        status, 429,
        "a fresh client-written address buys no new budget"
    );
    let status = wrong_login("192.0.2.9, 192.0.2.10".into())
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "another client has its own budget");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_secret_is_argon2id_of_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let broker = BrokerProc::start().await;
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let env = [("STATE_DIR", state.to_str().unwrap())];
    let gateway = GatewayProc::start(&broker, &env).await;
    let cookie = login(&gateway).await;
    let token = cookie.strip_prefix("dispatch_session=v1.").unwrap();
    let (payload, mac) = token.split_once('.').unwrap();
    let payload = URL_SAFE_NO_PAD.decode(payload).unwrap();
    let mac = URL_SAFE_NO_PAD.decode(mac).unwrap();

    let state = state.as_path();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(state), 0o700);
    assert_eq!(mode(&state.join("login-salt")), 0o600);
    let salt_hex = std::fs::read_to_string(state.join("login-salt")).unwrap();
    let salt: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&salt_hex.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect();

    // What a cookie thief must compute for every key guess.
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).unwrap();
    let mut secret = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(KEY.as_bytes(), &salt, &mut secret)
        .unwrap();
    let verify = |secret: &[u8]| {
        let mut verifier = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        verifier.update(&payload);
        verifier.verify_slice(&mac).is_ok()
    };
    assert!(verify(&secret), "HMAC under Argon2id(key, salt)");
    let mut fast = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    fast.update(b"dispatch-gateway login token v1");
    assert!(
        !verify(&fast.finalize().into_bytes()),
        "not under a bare HMAC of the key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logout_survives_a_restart() {
    let broker = BrokerProc::start().await;
    let state = tempfile::tempdir().unwrap();
    let env = [("STATE_DIR", state.path().to_str().unwrap())];
    let gateway = GatewayProc::start(&broker, &env).await;
    let (gone, kept) = (login(&gateway).await, login(&gateway).await);
    let logout = http()
        .post(gateway.url("/api/logout"))
        .header("cookie", &gone)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert!(gateway.stop().await.success());

    let gateway = GatewayProc::start(&broker, &env).await;
    let sessions_with = |cookie: &str| {
        http()
            .get(gateway.url("/api/sessions"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        sessions_with(&kept).await.unwrap().status(),
        200,
        "other logins survive"
    );
    assert_eq!(
        sessions_with(&gone).await.unwrap().status(),
        401,
        "the logout holds"
    );
}

/// A conversation event feed opened with `cookie`, once its `ready` event arrived.
async fn open_feed(gateway: &GatewayProc, cookie: &str) -> reqwest::Response {
    let mut response = http()
        .get(gateway.url("/api/conversations/events"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.replace("event: ", "event:").contains("event:ready") {
        let chunk = tokio::time::timeout(DEADLINE, response.chunk())
            .await
            .expect("the ready event")
            .unwrap()
            .expect("the feed open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    response
}

/// Waits for a feed to end; returns what it sent last.
async fn feed_ended(mut feed: reqwest::Response, within: Duration) -> String {
    let mut tail = String::new();
    tokio::time::timeout(within, async {
        while let Ok(Some(chunk)) = feed.chunk().await {
            tail.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the feed still runs after {within:?}"));
    tail
}

/// The three authenticated streams of one login: a terminal, the session
/// events socket and the conversation feed.
async fn open_streams(
    gateway: &GatewayProc,
    cookie: &str,
) -> (Terminal, Terminal, reqwest::Response) {
    let session = create_session(gateway, cookie, serde_json::json!({})).await;
    let terminal =
        Terminal::attach(gateway, cookie, session["id"].as_str().unwrap(), (80, 24)).await;
    let origin = format!("http://{}", gateway.addr);
    let events = ws_connect(gateway, "/ws/events", Some(cookie), Some(&origin))
        .await
        .expect("events upgrade");
    let feed = open_feed(gateway, cookie).await;
    (terminal, Terminal::over(events), feed)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stream_ends_at_logout() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[]).await;
    wait_ready(&gateway, "the broker answers").await;
    let cookie = login(&gateway).await;
    let other = login(&gateway).await;
    let (mut terminal, mut events, feed) = open_streams(&gateway, &cookie).await;
    let other_feed = open_feed(&gateway, &other).await;

    let logout = http()
        .post(gateway.url("/api/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(terminal.wait_closed().await, Some(4401));
    assert_eq!(events.wait_closed().await, Some(4401));
    let tail = feed_ended(feed, DEADLINE).await;
    assert!(tail.contains("credentials revoked"), "{tail}");
    // Another login's feed goes on.
    let still =
        tokio::time::timeout(Duration::from_millis(500), feed_ended(other_feed, DEADLINE)).await;
    assert!(still.is_err(), "another login's feed ended too");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stream_ends_at_expiry() {
    let broker = BrokerProc::start().await;
    let gateway = GatewayProc::start(&broker, &[("SESSION_TTL_SECS", "4")]).await;
    wait_ready(&gateway, "the broker answers").await;
    let cookie = login(&gateway).await;
    let (mut terminal, mut events, feed) = open_streams(&gateway, &cookie).await;
    let tail = feed_ended(feed, Duration::from_secs(15)).await;
    assert!(tail.contains("credentials expired"), "{tail}");
    assert_eq!(terminal.wait_closed().await, Some(4401));
    assert_eq!(events.wait_closed().await, Some(4401));
}
