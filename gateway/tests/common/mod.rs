//! Test peers: a real `dispatch-broker` on a Unix socket, a real
//! `dispatch-gateway` on an ephemeral port, an HTTP client and a WebSocket
//! terminal client (tokio-tungstenite) that speaks docs/protocol.md.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use dispatch_testkit::{announce, launch};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous limit for anything that waits on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The key every test gateway uses.
pub const KEY: &str = "test-key-5f1d0c";

pub fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dispatch-gateway"))
}

/// `dispatch-broker` from `DISPATCH_BROKER_BIN`, else beside the gateway
/// binary (built on demand with the same profile).
pub fn broker_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DISPATCH_BROKER_BIN") {
        return PathBuf::from(bin);
    }
    let bin = gateway_bin().with_file_name("dispatch-broker");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if bin.is_file() {
            return;
        }
        let profile = bin
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "dispatch-broker"]);
        if profile == "release" {
            cargo.arg("--release");
        }
        let status = cargo
            .status()
            .expect("running cargo build -p dispatch-broker");
        assert!(status.success(), "cargo build -p dispatch-broker failed");
    });
    bin
}

/// A running broker on a Unix socket in its own temporary directory.
pub struct BrokerProc {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: String,
}

impl BrokerProc {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sessions")).unwrap();
        let url = format!("unix:{}", dir.path().join("broker.sock").display());
        let mut broker = Self {
            child: None,
            dir,
            url,
            token: "broker-token-test".into(),
        };
        broker.spawn().await;
        broker
    }

    /// (Re)starts the process on the same socket and session root.
    pub async fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.dir.path().join("broker.sock"));
        let mut child = launch::command(&broker_bin())
            .env("BROKER_LISTEN", &self.url)
            .env("BROKER_TOKEN", &self.token)
            .env("PTY_ROOT", self.dir.path().join("sessions"))
            .env("HOME", self.dir.path())
            .env("SHELL", "/bin/bash")
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting dispatch-broker");
        launch::announced(&mut child, announce::BROKER_LISTENING, DEADLINE)
            .await
            .expect("the broker listens");
        self.child = Some(child);
    }

    /// The broker's process id.
    pub fn pid(&self) -> i32 {
        let child = self.child.as_ref().expect("the broker runs");
        child.id().expect("the broker runs") as i32
    }

    /// SIGKILL: the broker dies without warning.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// A running gateway.
pub struct GatewayProc {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its `STATE_DIR`, when the launcher made one.
    pub state_dir: Option<tempfile::TempDir>,
}

impl GatewayProc {
    /// A gateway in front of `broker` with `env` added. Unless `env` names
    /// one, its `STATE_DIR` is the broker's (so a restarted gateway keeps its
    /// logins and logouts).
    pub async fn start(broker: &BrokerProc, env: &[(&str, &str)]) -> Self {
        let state_dir = broker.dir.path().join("gateway-state");
        let mut all = vec![
            ("BROKER_URL", broker.url.as_str()),
            ("BROKER_TOKEN", broker.token.as_str()),
        ];
        if !env.iter().any(|(name, _)| *name == "STATE_DIR") {
            all.push(("STATE_DIR", state_dir.to_str().unwrap()));
        }
        all.extend_from_slice(env);
        Self::start_with(&all).await
    }

    /// A gateway with exactly these variables (plus `PORT=0`, the test key
    /// and a fresh `STATE_DIR` unless given).
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let mut command = gateway_command(env);
        let state_dir = match env.iter().any(|(name, _)| *name == "STATE_DIR") {
            true => None,
            false => {
                let dir = tempfile::tempdir().unwrap();
                command.env("STATE_DIR", dir.path());
                Some(dir)
            }
        };
        let mut gateway = Self::spawn(command).await;
        gateway.state_dir = state_dir;
        gateway
    }

    /// Spawns a prepared gateway command and waits until it listens.
    pub async fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("starting dispatch-gateway");
        let addr = launch::announced_addr(&mut child, announce::GATEWAY_LISTENING, DEADLINE)
            .await
            .expect("the gateway listens");
        Self {
            child,
            addr,
            state_dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn pid(&self) -> i32 {
        self.child.id().unwrap() as i32
    }

    /// SIGTERM, then waits for the exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.pid());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("gateway exits after SIGTERM")
            .unwrap()
    }

    /// Resident memory of the gateway process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }
}

/// A gateway command ([`launch::command`]: none of the machine's settings)
/// with `env`, `PORT=0`, `TERMINAL_KEY=KEY` unless given.
pub fn gateway_command(env: &[(&str, &str)]) -> Command {
    gateway_command_of(&gateway_bin(), env)
}

/// [`gateway_command`] for the gateway binary at `bin`.
pub fn gateway_command_of(bin: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = launch::command(bin);
    command
        .env("PORT", "0")
        .env("TERMINAL_KEY", KEY)
        .env(
            "RUST_LOG",
            std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

pub fn rss_kib(pid: i32) -> u64 {
    dispatch_testkit::process::rss_kib(pid as u32).expect("the process's VmRSS")
}

/// An HTTP client that never follows redirects or keeps cookies by itself.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in; returns the `Cookie` header value.
pub async fn login(gateway: &GatewayProc) -> String {
    let response = http()
        .post(gateway.url("/api/login"))
        .json(&serde_json::json!({"key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "login");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

/// Creates a shell session; returns its JSON.
pub async fn create_session(
    gateway: &GatewayProc,
    cookie: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = http()
        .post(gateway.url("/api/sessions"))
        .header("cookie", cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "create session");
    response.json().await.unwrap()
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with optional cookie and Origin.
pub async fn ws_connect(
    gateway: &GatewayProc,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    let mut request = gateway.ws_url(path).into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(cookie).unwrap());
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    let config = tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(64 << 20));
    tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .map(|(socket, _)| socket)
}

/// Opens a WebSocket as the page would (cookie, same-origin `Origin`),
/// offering `protocol` after one the gateway does not know, when given: the
/// socket and the subprotocol the gateway chose.
pub async fn ws_connect_offering(
    gateway: &GatewayProc,
    path: &str,
    cookie: &str,
    protocol: Option<&str>,
) -> Result<(Socket, Option<String>), tungstenite::Error> {
    let mut request = gateway.ws_url(path).into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
    let origin = format!("http://{}", gateway.addr);
    headers.insert("origin", HeaderValue::from_str(&origin).unwrap());
    if let Some(protocol) = protocol {
        let offer = format!("other.protocol, {protocol}");
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&offer).unwrap(),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok((socket, chosen))
}

/// What `seq 1 lines` prints through a PTY.
pub fn seq_output(lines: u64) -> Vec<u8> {
    (1..=lines)
        .flat_map(|n| format!("{n}\r\n").into_bytes())
        .collect()
}

/// What a terminal socket delivered.
#[derive(Debug)]
pub enum Event {
    Control(serde_json::Value),
    Output(Vec<u8>),
    Closed(Option<u16>),
}

/// A terminal client: keeps the bytes received since the last `reset`.
pub struct Terminal {
    pub socket: Socket,
    /// Output since the last reset.
    pub screen: Vec<u8>,
    /// Binary bytes received in all (for acknowledgements).
    pub received: u64,
    pub acked: u64,
    pub controls: Vec<serde_json::Value>,
    pub closed: Option<Option<u16>>,
    pub auto_ack: bool,
}

impl Terminal {
    /// A client over an upgraded socket, not acknowledging by itself.
    pub fn over(socket: Socket) -> Self {
        Self {
            socket,
            screen: Vec::new(),
            received: 0,
            acked: 0,
            controls: Vec::new(),
            closed: None,
            auto_ack: false,
        }
    }

    pub async fn attach(gateway: &GatewayProc, cookie: &str, id: &str, size: (u16, u16)) -> Self {
        let path = format!("/ws/sessions/{id}?cols={}&rows={}", size.0, size.1);
        let socket = ws_connect(
            gateway,
            &path,
            Some(cookie),
            Some(&format!("http://{}", gateway.addr)),
        )
        .await
        .expect("terminal upgrade");
        let mut terminal = Self::over(socket);
        terminal.auto_ack = true;
        let first = terminal.next_control().await;
        assert_eq!(first["type"], "attached", "first message: {first}");
        terminal
    }

    /// The next event (None on timeout).
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        loop {
            let message = match tokio::time::timeout(timeout, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed.get_or_insert(None);
                    return Some(Event::Closed(None));
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Binary(data) => {
                    self.received += data.len() as u64;
                    self.screen.extend_from_slice(&data);
                    if self.auto_ack && self.received - self.acked >= 64 * 1024 {
                        self.ack().await;
                    }
                    return Some(Event::Output(data.to_vec()));
                }
                Message::Text(text) => {
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "reset" {
                        self.screen.clear();
                    }
                    self.controls.push(value.clone());
                    return Some(Event::Control(value));
                }
                Message::Close(frame) => {
                    let code = frame.map(|f| u16::from(f.code));
                    self.closed = Some(code);
                    return Some(Event::Closed(code));
                }
                _ => continue,
            }
        }
    }

    pub async fn ack(&mut self) {
        self.acked = self.received;
        let ack = serde_json::json!({"type": "ack", "bytes": self.received}).to_string();
        let _ = self.socket.send(Message::text(ack)).await;
    }

    /// The next control message, skipping output.
    pub async fn next_control(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Control(value)) => return value,
                Some(Event::Output(_)) => continue,
                other => panic!("expected a control message, got {other:?}"),
            }
        }
    }

    /// Waits until the output since the last reset contains `needle`.
    pub async fn wait_for(&mut self, needle: &str) {
        self.wait_for_within(needle, DEADLINE).await
    }

    pub async fn wait_for_within(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        // Search only what arrived since the last look (plus an overlap).
        let mut from = 0;
        loop {
            let start = from.min(self.screen.len()).saturating_sub(needle.len());
            if contains(&self.screen[start..], needle.as_bytes()) {
                break;
            }
            from = self.screen.len();
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Closed(code)) => panic!("socket closed ({code:?}) before {needle:?}"),
                None => panic!(
                    "no {needle:?} within {limit:?}; got: {:?}",
                    String::from_utf8_lossy(&self.screen[self.screen.len().saturating_sub(2000)..])
                ),
                Some(Event::Control(c)) if c["type"] == "reset" => from = 0,
                _ => {}
            }
        }
    }

    /// Waits for the socket to close; returns its close code.
    pub async fn wait_closed(&mut self) -> Option<u16> {
        let deadline = Instant::now() + DEADLINE;
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.next_event(left).await.is_none() {
                panic!("socket still open after {DEADLINE:?}");
            }
        }
        self.closed.unwrap()
    }

    pub async fn type_text(&mut self, text: &str) {
        self.socket
            .send(Message::binary(text.as_bytes().to_vec()))
            .await
            .unwrap();
    }

    pub async fn control(&mut self, value: serde_json::Value) {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Waits until `GET /readyz` answers 200 (the broker is reachable).
pub async fn wait_ready(gateway: &GatewayProc, what: &str) {
    let client = http();
    eventually(what, || async {
        client
            .get(gateway.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
}

/// Polls `check` until it is true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The gateway's metrics, read with the key.
pub async fn metrics(gateway: &GatewayProc) -> dispatch_testkit::prometheus::Exposition {
    let body = http()
        .get(gateway.url("/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    dispatch_testkit::prometheus::parse(&body)
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{body}"))
}
