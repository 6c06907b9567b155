//! The egress proxy through real sockets: a real broker and gateway
//! (`EGRESS_LISTEN=127.0.0.1:0`), upstreams on loopback allowlisted by exact
//! name, raw `CONNECT` requests with each session's credentials. Every
//! decision is checked in the answer, in the audit line (`LOG_FORMAT=json`,
//! target `dispatch::egress`), in the counters of `/metrics` and in the
//! session's `GET /api/sessions/{id}/egress`; a real session's environment
//! carries its own proxy credentials and `curl` in it reaches an allowed
//! upstream through them.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use dispatch_proto::egress::EgressKey;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const UNKNOWN_ID: &str = "7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01";

/// The gateway's stderr, one JSON value per line (text lines as strings).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<serde_json::Value>>>);

impl Logs {
    fn collect(stderr: tokio::process::ChildStderr) -> Self {
        let logs = Self::default();
        let lines = logs.0.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                lines.lock().unwrap().push(value);
            }
        });
        logs
    }

    fn text(&self) -> String {
        let lines = self.0.lock().unwrap();
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Waits for a line whose fields match every `(name, value)`.
    async fn wait_for(&self, fields: &[(&str, serde_json::Value)]) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let found = self.0.lock().unwrap().iter().rev().find_map(|line| {
                let all = fields
                    .iter()
                    .all(|(name, value)| &line["fields"][*name] == value);
                all.then(|| line["fields"].clone())
            });
            if let Some(found) = found {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {fields:?}; logs:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The audit line of a refusal of `host` (or of nothing parsed) for `reason`.
    async fn refusal(&self, session: &str, host: &str, reason: &str) -> serde_json::Value {
        self.wait_for(&[
            ("message", "egress".into()),
            ("session", session.into()),
            ("host", host.into()),
            ("decision", "refused".into()),
            ("reason", reason.into()),
        ])
        .await
    }
}

/// A gateway with its egress proxy, and its logs.
struct Stack {
    gateway: GatewayProc,
    egress: SocketAddr,
    logs: Logs,
    /// Whether the gateway runs its own broker (which outlives it).
    local: bool,
    dir: tempfile::TempDir,
}

impl Drop for Stack {
    /// Ends a local broker with `dispatch-gateway stop`.
    fn drop(&mut self) {
        if self.local {
            let _ = std::process::Command::new(gateway_bin())
                .arg("stop")
                .env("STATE_DIR", self.dir.path())
                .env("TERMINAL_KEY", KEY)
                .env_remove("BROKER_URL")
                .stdout(Stdio::null())
                .output();
        }
    }
}

impl Stack {
    /// A gateway in front of `broker` with `env` added.
    async fn remote(broker: &BrokerProc, env: &[(&str, &str)]) -> Self {
        let mut all = vec![
            ("BROKER_URL", broker.url.as_str()),
            ("BROKER_TOKEN", broker.token.as_str()),
        ];
        all.extend_from_slice(env);
        Self::start(&all).await
    }

    /// A gateway with `env` (local mode unless it names a broker).
    async fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("sessions");
        std::fs::create_dir(&sessions).unwrap();
        let broker = broker_bin();
        let mut command = gateway_command(env);
        command
            .env("EGRESS_LISTEN", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,dispatch::egress=info")
            .env("STATE_DIR", dir.path())
            .env("BROKER_BIN", &broker)
            .env("PTY_ROOT", &sessions)
            .env("HOME", dir.path())
            .env("SHELL", "/bin/bash")
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut gateway = GatewayProc::spawn(command).await;
        let logs = Logs::collect(gateway.child.stderr.take().unwrap());
        let serving = logs
            .wait_for(&[("message", "egress proxy serving".into())])
            .await;
        let egress = serving["addr"].as_str().unwrap().parse().unwrap();
        wait_ready(&gateway, "the broker answers").await;
        Self {
            gateway,
            egress,
            logs,
            local: !env.iter().any(|(name, _)| *name == "BROKER_URL"),
            dir,
        }
    }

    async fn api(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        http()
            .request(method, self.gateway.url(path))
            .header("authorization", format!("Bearer {KEY}"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
    }

    /// Creates a shell session; returns its id.
    async fn create_session(&self) -> String {
        let response = self.api(reqwest::Method::POST, "/api/sessions").await;
        assert_eq!(response.status(), 201);
        let session: serde_json::Value = response.json().await.unwrap();
        session["id"].as_str().unwrap().to_owned()
    }

    async fn end_session(&self, id: &str) {
        let response = self
            .api(reqwest::Method::DELETE, &format!("/api/sessions/{id}"))
            .await;
        assert_eq!(response.status(), 200);
    }

    /// `GET /api/sessions/{id}/egress`.
    async fn ledger(&self, id: &str) -> (u16, serde_json::Value) {
        let response = self
            .api(reqwest::Method::GET, &format!("/api/sessions/{id}/egress"))
            .await;
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn metrics(&self) -> dispatch_testkit::prometheus::Exposition {
        let text = self
            .api(reqwest::Method::GET, "/metrics")
            .await
            .text()
            .await
            .unwrap();
        dispatch_testkit::prometheus::parse(&text).unwrap()
    }

    async fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics().await.get(name, labels).unwrap_or(0.0)
    }

    async fn refusals(&self, reason: &str) -> f64 {
        self.counter("dispatch_egress_refusals_total", &[("reason", reason)])
            .await
    }

    /// Sends a request head to the proxy.
    async fn request(&self, head: &str) -> Answer {
        let mut stream = TcpStream::connect(self.egress).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        Answer::read(stream).await
    }

    /// `CONNECT target` with a `Proxy-Authorization` header when given.
    async fn connect(&self, target: &str, authorization: Option<&str>) -> Answer {
        let auth = authorization.map_or(String::new(), |a| format!("Proxy-Authorization: {a}\r\n"));
        self.request(&format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n"
        ))
        .await
    }
}

/// The proxy's answer: the status, the head and, unless 200, the body.
struct Answer {
    status: u16,
    head: String,
    body: String,
    stream: TcpStream,
}

impl Answer {
    async fn read(mut stream: TcpStream) -> Self {
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
                .await
                .expect("an answer in time")
                .unwrap();
            assert_eq!(n, 1, "closed before a whole answer: {head:?}");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head[9..12].parse().unwrap();
        let mut body = String::new();
        if status != 200 {
            tokio::time::timeout(DEADLINE, stream.read_to_string(&mut body))
                .await
                .expect("the body in time")
                .unwrap();
        }
        Self {
            status,
            head,
            body,
            stream,
        }
    }

    fn assert_refused(&self, status: u16, reason: &str) {
        assert_eq!(self.status, status, "{}{}", self.head, self.body);
        assert!(
            self.body.starts_with(reason)
                && self.body.ends_with('\n')
                && self.body.lines().count() == 1,
            "one line starting with {reason:?}: {:?}",
            self.body
        );
    }
}

/// `Basic base64(id:secret)`.
fn basic(id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

/// The credentials the broker gives session `id` (derived as it does).
fn credentials(broker: &BrokerProc, id: &str) -> String {
    basic(id, &EgressKey::derive(&broker.token).secret(id))
}

/// An upstream on `ip` that echoes what it receives.
async fn echo_upstream(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_tunnel_relays_both_ways_and_is_logged_counted_and_listed() {
    let upstream = echo_upstream("127.0.0.1").await;
    let broker = BrokerProc::start().await;
    let port = upstream.port().to_string();
    let stack = Stack::remote(
        &broker,
        &[("EGRESS_ALLOW", "localhost"), ("EGRESS_PORTS", &port)],
    )
    .await;
    let id = stack.create_session().await;
    let allowed_before = stack
        .counter("dispatch_egress_tunnels_total", &[("decision", "allowed")])
        .await;
    let up_before = stack
        .counter("dispatch_egress_bytes_total", &[("direction", "up")])
        .await;

    // The head and the first bytes in one write, as a TLS client may send them.
    let target = format!("localhost:{port}");
    let mut stream = TcpStream::connect(stack.egress).await.unwrap();
    let early = b"hello before the answer|";
    let mut first = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
        credentials(&broker, &id)
    )
    .into_bytes();
    first.extend_from_slice(early);
    stream.write_all(&first).await.unwrap();
    let mut answer = Answer::read(stream).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut read, mut write) = answer.stream.split();
    let send = async {
        write.write_all(&payload).await.unwrap();
        write.shutdown().await.unwrap();
    };
    let mut echoed = Vec::new();
    let receive = read.read_to_end(&mut echoed);
    let (_, received) = tokio::time::timeout(DEADLINE, async { tokio::join!(send, receive) })
        .await
        .expect("the echo in time");
    received.unwrap();
    let sent = early.len() + payload.len();
    assert_eq!(echoed.len(), sent);
    assert_eq!(&echoed[..early.len()], early);
    assert_eq!(&echoed[early.len()..], &payload[..]);
    drop(answer);

    let line = stack
        .logs
        .wait_for(&[
            ("message", "egress".into()),
            ("session", id.as_str().into()),
            ("decision", "allowed".into()),
        ])
        .await;
    assert_eq!(line["host"], "localhost");
    assert_eq!(line["port"], upstream.port());
    assert_eq!(line["bytes_up"], sent as u64);
    assert_eq!(line["bytes_down"], sent as u64);
    assert_eq!(line["reason"], "");
    assert!(line["duration_ms"].is_u64());
    assert_eq!(
        stack
            .counter("dispatch_egress_tunnels_total", &[("decision", "allowed")])
            .await,
        allowed_before + 1.0
    );
    assert_eq!(
        stack
            .counter("dispatch_egress_bytes_total", &[("direction", "up")])
            .await,
        up_before + sent as f64
    );

    let (status, ledger) = stack.ledger(&id).await;
    assert_eq!(status, 200, "{ledger}");
    assert_eq!(ledger["sessionId"], id.as_str());
    let hosts = ledger["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{ledger}");
    let host = &hosts[0];
    assert_eq!(host["host"], "localhost");
    assert_eq!(host["port"], upstream.port());
    assert_eq!(host["decision"], "allowed");
    assert_eq!(host["reason"], serde_json::Value::Null);
    assert_eq!(host["count"], 1);
    assert_eq!(host["bytesUp"], sent as u64);
    assert_eq!(host["bytesDown"], sent as u64);
    assert!(host["lastAt"].as_i64().unwrap() > 1_700_000_000_000);

    // The route's own errors.
    let (status, body) = stack.ledger(UNKNOWN_ID).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = stack.ledger("not-a-uuid").await;
    assert_eq!(status, 400, "{body}");
    let response = stack
        .api(reqwest::Method::POST, &format!("/api/sessions/{id}/egress"))
        .await;
    assert_eq!(response.status(), 405);
    let response = http()
        .get(stack.gateway.url(&format!("/api/sessions/{id}/egress")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // The session's secret is nowhere in the logs.
    let secret = EgressKey::derive(&broker.token).secret(&id);
    assert!(!stack.logs.text().contains(&secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_answer_their_status_and_reason_and_are_logged_counted_and_listed() {
    let upstream = echo_upstream("127.0.0.1").await;
    let broker = BrokerProc::start().await;
    let port = upstream.port();
    let allow = "localhost,*.localhost,*.example.com";
    let ports = port.to_string();
    let stack = Stack::remote(
        &broker,
        &[("EGRESS_ALLOW", allow), ("EGRESS_PORTS", &ports)],
    )
    .await;
    let id = stack.create_session().await;
    let other = stack.create_session().await;
    let auth = credentials(&broker, &id);
    let key = EgressKey::derive(&broker.token);

    // Not CONNECT: 405, before anything else.
    let before = stack.refusals("method").await;
    let answer = stack
        .request("GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    answer.assert_refused(405, "only CONNECT is served");
    assert!(answer.head.contains("\r\nAllow: CONNECT\r\n"));
    stack.logs.refusal("", "", "only CONNECT is served").await;
    assert_eq!(stack.refusals("method").await, before + 1.0);

    // Credentials: missing, wrong, another session's, another token's.
    let target = format!("localhost:{port}");
    let before = stack.refusals("credentials_required").await;
    let answer = stack.connect(&target, None).await;
    answer.assert_refused(407, "proxy credentials required");
    assert!(
        answer
            .head
            .contains("\r\nProxy-Authenticate: Basic realm=\"dispatch egress\"\r\n"),
        "{}",
        answer.head
    );
    assert_eq!(stack.refusals("credentials_required").await, before + 1.0);
    let before = stack.refusals("bad_credentials").await;
    let bad = [
        basic(&id, "wrong-secret"),
        basic(&id, &key.secret(&other)),
        basic(&other, &key.secret(&id)),
        basic(&id, &EgressKey::derive("another-token").secret(&id)),
        format!("Bearer {}", key.secret(&id)),
    ];
    for authorization in &bad {
        let answer = stack.connect(&target, Some(authorization)).await;
        answer.assert_refused(407, "bad proxy credentials");
        assert!(answer.head.contains("Proxy-Authenticate: Basic"));
    }
    assert_eq!(
        stack.refusals("bad_credentials").await,
        before + bad.len() as f64
    );
    stack.logs.refusal("", "", "bad proxy credentials").await;

    // Port, host, and a name that is loopback allowed only by a wildcard.
    let cases = [
        (
            "localhost:22".to_owned(),
            403,
            "port not allowed",
            "port",
            "localhost",
        ),
        (
            format!("anthropic.com.evil.net:{port}"),
            403,
            "not in allowlist",
            "host",
            "anthropic.com.evil.net",
        ),
        (
            format!("example.com:{port}"),
            403,
            "not in allowlist",
            "host",
            "example.com",
        ),
        (
            format!("foo.localhost:{port}"),
            403,
            "non-public address",
            "address",
            "foo.localhost",
        ),
        (
            format!("169.254.169.254:{port}"),
            403,
            "not in allowlist",
            "host",
            "169.254.169.254",
        ),
        (
            format!("[fd00:ec2::254]:{port}"),
            403,
            "not in allowlist",
            "host",
            "fd00:ec2::254",
        ),
        (
            format!("127.0.0.1:{port}"),
            403,
            "not in allowlist",
            "host",
            "127.0.0.1",
        ),
    ];
    for (target, status, reason, label, host) in &cases {
        let before = stack.refusals(label).await;
        let answer = stack.connect(target, Some(&auth)).await;
        answer.assert_refused(*status, reason);
        let line = stack.logs.refusal(&id, host, reason).await;
        assert_eq!(line["bytes_up"], 0);
        assert_eq!(stack.refusals(label).await, before + 1.0, "{target}");
    }
    let answer = stack
        .connect(&format!("foo.localhost:{port}"), Some(&auth))
        .await;
    assert!(
        answer.body.contains("127.0.0.1") || answer.body.contains("::1"),
        "{}",
        answer.body
    );
    // A malformed target.
    let answer = stack.connect("localhost", Some(&auth)).await;
    answer.assert_refused(400, "bad request");

    // An ended session's credentials, and those of a session the broker
    // never had (the secret itself is right).
    stack.end_session(&other).await;
    let before = stack.refusals("session_not_running").await;
    let answer = stack
        .connect(&target, Some(&credentials(&broker, &other)))
        .await;
    answer.assert_refused(403, "session not running");
    let answer = stack
        .connect(&target, Some(&credentials(&broker, UNKNOWN_ID)))
        .await;
    answer.assert_refused(403, "session not running");
    stack
        .logs
        .refusal(&other, "localhost", "session not running")
        .await;
    assert_eq!(stack.refusals("session_not_running").await, before + 2.0);

    // The session's view lists what it was refused.
    let (status, ledger) = stack.ledger(&id).await;
    assert_eq!(status, 200);
    let hosts = ledger["hosts"].as_array().unwrap();
    let find = |host: &str| {
        hosts
            .iter()
            .find(|h| h["host"] == host)
            .unwrap_or_else(|| panic!("{host} in {ledger}"))
    };
    assert_eq!(find("example.com")["decision"], "refused");
    assert_eq!(find("example.com")["reason"], "not in allowlist");
    assert_eq!(find("example.com")["count"], 1);
    assert_eq!(find("foo.localhost")["reason"], "non-public address");
    assert_eq!(find("foo.localhost")["count"], 2);
    assert_eq!(find("169.254.169.254")["decision"], "refused");
    assert!(hosts.iter().all(|h| h["decision"] == "refused"), "{ledger}");
    assert!(
        stack.refusals("host").await >= 5.0
            && stack
                .counter("dispatch_egress_tunnels_total", &[("decision", "refused")])
                .await
                >= 15.0
    );
}

/// A listener whose backlog is full: connections to it hang.
fn black_hole() -> (socket2::Socket, std::net::TcpStream, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let filler = std::net::TcpStream::connect(addr).unwrap();
    (socket, filler, addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_refuse_with_their_status_and_time_out() {
    let upstream = echo_upstream("127.0.0.1").await;
    let (_hole, _filler, hole) = black_hole();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let broker = BrokerProc::start().await;
    let ports = format!("{},{},{closed_port}", upstream.port(), hole.port());
    let stack = Stack::remote(
        &broker,
        &[
            ("EGRESS_ALLOW", "localhost,127.0.0.1,*.invalid"),
            ("EGRESS_PORTS", &ports),
            ("EGRESS_MAX_TUNNELS_PER_SESSION", "2"),
            ("EGRESS_MAX_TUNNELS", "3"),
            ("EGRESS_CONNECT_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let a = stack.create_session().await;
    let b = stack.create_session().await;
    let target = format!("localhost:{}", upstream.port());
    let (auth_a, auth_b) = (credentials(&broker, &a), credentials(&broker, &b));

    // Per session.
    let first = stack.connect(&target, Some(&auth_a)).await;
    let second = stack.connect(&target, Some(&auth_a)).await;
    assert_eq!((first.status, second.status), (200, 200));
    let third = stack.connect(&target, Some(&auth_a)).await;
    third.assert_refused(429, "too many tunnels for this session");
    assert!(third.body.contains("limit 2"), "{}", third.body);
    stack
        .logs
        .refusal(&a, "localhost", "too many tunnels for this session")
        .await;

    // In total: b's first tunnel is the third connection, the next is one too many.
    // (The refused connection's place is given back as it closes.)
    let mut b_first = stack.connect(&target, Some(&auth_b)).await;
    for _ in 0..100 {
        if b_first.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        b_first = stack.connect(&target, Some(&auth_b)).await;
    }
    assert_eq!(b_first.status, 200, "{}", b_first.body);
    let over = stack.connect(&target, Some(&auth_b)).await;
    over.assert_refused(503, "too many tunnels");
    assert!(over.body.contains("limit 3"), "{}", over.body);
    stack.logs.refusal("", "", "too many tunnels").await;
    assert!(stack.refusals("total_limit").await >= 1.0);
    assert!(stack.refusals("session_limit").await >= 1.0);

    // Closing tunnels gives their places back.
    drop((first, b_first));
    eventually("a's place is given back", || async {
        stack.connect(&target, Some(&auth_a)).await.status == 200
    })
    .await;
    drop(second);

    // Connect timeout: 504; nothing listening: 502.
    eventually("every tunnel closed", || async {
        stack.counter("dispatch_egress_tunnels_open", &[]).await == 0.0
    })
    .await;
    let started = Instant::now();
    let answer = stack
        .connect(&format!("127.0.0.1:{}", hole.port()), Some(&auth_b))
        .await;
    answer.assert_refused(504, "connect timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
    stack
        .logs
        .refusal(&b, "127.0.0.1", "connect timed out")
        .await;
    let answer = stack
        .connect(&format!("localhost:{closed_port}"), Some(&auth_b))
        .await;
    answer.assert_refused(502, "upstream unreachable");
    stack
        .logs
        .refusal(&b, "localhost", "upstream unreachable")
        .await;
    // A name that does not resolve (RFC 6761 keeps `.invalid` unresolvable).
    let started = Instant::now();
    let answer = stack
        .connect(&format!("nothing.invalid:{closed_port}"), Some(&auth_b))
        .await;
    answer.assert_refused(502, "cannot resolve host");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, ledger) = stack.ledger(&b).await;
    let reasons: Vec<&str> = ledger["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"connect timed out"), "{ledger}");
    assert!(reasons.contains(&"upstream unreachable"), "{ledger}");
    assert!(reasons.contains(&"cannot resolve host"), "{ledger}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_tunnels_are_closed() {
    let upstream = echo_upstream("127.0.0.1").await;
    let broker = BrokerProc::start().await;
    let port = upstream.port().to_string();
    let stack = Stack::remote(
        &broker,
        &[
            ("EGRESS_ALLOW", "localhost"),
            ("EGRESS_PORTS", &port),
            ("EGRESS_IDLE_SECS", "1"),
        ],
    )
    .await;
    let id = stack.create_session().await;
    let mut answer = stack
        .connect(
            &format!("localhost:{port}"),
            Some(&credentials(&broker, &id)),
        )
        .await;
    assert_eq!(answer.status, 200);
    // Traffic keeps it open past the idle time.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        answer.stream.write_all(b"ping").await.unwrap();
        let mut pong = [0; 4];
        answer.stream.read_exact(&mut pong).await.unwrap();
    }
    let started = Instant::now();
    // The view counts an open tunnel's bytes as they pass.
    let (_, ledger) = stack.ledger(&id).await;
    assert_eq!(ledger["hosts"][0]["bytesUp"], 16, "{ledger}");
    assert_eq!(ledger["hosts"][0]["bytesDown"], 16, "{ledger}");
    let mut rest = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        answer.stream.read_to_end(&mut rest),
    )
    .await
    .expect("closed when idle")
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let line = stack
        .logs
        .wait_for(&[
            ("session", id.as_str().into()),
            ("decision", "allowed".into()),
        ])
        .await;
    assert_eq!(line["end"], "idle timeout");
    assert_eq!(line["bytes_up"], 16);
    assert_eq!(line["bytes_down"], 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_needs_a_broker_token() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix:{}", dir.path().join("none.sock").display());
    let output = gateway_command(&[("BROKER_URL", &socket), ("EGRESS_LISTEN", "127.0.0.1:0")])
        .env("STATE_DIR", dir.path())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("EGRESS_LISTEN needs BROKER_TOKEN"),
        "{stderr}"
    );
    let output = tokio::process::Command::new(broker_bin())
        .env("BROKER_LISTEN", &socket)
        .env_remove("BROKER_TOKEN")
        .env("EGRESS_PROXY_URL", "http://127.0.0.1:3128")
        .env("PTY_ROOT", dir.path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("EGRESS_PROXY_URL needs BROKER_TOKEN"),
        "{stderr}"
    );
}

/// A one-shot HTTP server on `ip` that answers every request with `body`.
async fn http_upstream(ip: &str, body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_reaches_allowed_hosts_through_its_own_proxy_credentials() {
    // 127.0.0.2 is loopback but not in NO_PROXY, so curl goes through the proxy.
    let upstream = http_upstream("127.0.0.2", "hello from upstream").await;
    let port = upstream.port().to_string();
    // Local mode: the gateway starts its broker with EGRESS_PROXY_URL.
    let stack = Stack::start(&[("EGRESS_ALLOW", "127.0.0.2"), ("EGRESS_PORTS", &port)]).await;
    let id = stack.create_session().await;
    let other = stack.create_session().await;
    let cookie = login(&stack.gateway).await;
    let mut terminal = Terminal::attach(&stack.gateway, &cookie, &id, (200, 50)).await;
    terminal
        .type_text("env | sort | sed 's/^/ENV:/'; echo env-$((1+1))-done\r")
        .await;
    terminal.wait_for("env-2-done").await;
    let screen = String::from_utf8_lossy(&terminal.screen).to_string();
    let env: Vec<(&str, &str)> = screen
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("ENV:"))
        .filter_map(|l| l.split_once('='))
        .collect();
    let value = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name} in {env:?}"))
    };
    let proxy = value("HTTPS_PROXY");
    let prefix = format!("http://{id}:");
    let suffix = format!("@{}", stack.egress);
    assert!(
        proxy.starts_with(&prefix) && proxy.ends_with(&suffix),
        "{proxy}"
    );
    let secret = &proxy[prefix.len()..proxy.len() - suffix.len()];
    assert_eq!(secret.len(), 43, "{secret}");
    for name in ["HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert_eq!(value(name), proxy, "{name}");
    }
    assert_eq!(value("NO_PROXY"), "localhost,127.0.0.1");
    assert_eq!(value("no_proxy"), "localhost,127.0.0.1");
    assert_eq!(value("DISPATCH_SESSION_ID"), id);
    for (name, value) in &env {
        assert!(
            !name.contains("TOKEN") && !name.contains("KEY"),
            "{name} reached the session"
        );
        assert!(!value.contains(KEY), "the terminal key reached the session");
    }

    // curl in the session goes through the proxy with those credentials.
    terminal
        .type_text(&format!(
            "curl -sS -p http://127.0.0.2:{port}/ ; echo \" curl-exit=$?\"\r"
        ))
        .await;
    terminal.wait_for("hello from upstream curl-exit=0").await;
    terminal
        .type_text(&format!(
            "curl -sS -p http://example.com:{port}/ 2>&1 | grep -o 'CONNECT tunnel failed, response 403'; echo refused-$((2+1))\r"
        ))
        .await;
    terminal
        .wait_for("CONNECT tunnel failed, response 403\r\nrefused-3")
        .await;

    // The session's own view; the other session has none of it.
    let (status, ledger) = stack.ledger(&id).await;
    assert_eq!(status, 200);
    let hosts = ledger["hosts"].as_array().unwrap();
    let allowed = hosts
        .iter()
        .find(|h| h["decision"] == "allowed")
        .expect("the allowed host");
    assert_eq!(allowed["host"], "127.0.0.2");
    assert!(allowed["bytesDown"].as_u64().unwrap() > 0);
    let refused = hosts
        .iter()
        .find(|h| h["decision"] == "refused")
        .expect("the refused host");
    assert_eq!(refused["host"], "example.com");
    assert_eq!(refused["reason"], "not in allowlist");
    let (_, ledger) = stack.ledger(&other).await;
    assert_eq!(ledger["hosts"], serde_json::json!([]));
    assert!(!stack.logs.text().contains(secret));
}
