//! The public tunnel against a real LocalTunnel server on loopback.
//!
//! Needs `DISPATCH_TEST_LT_SERVER` (see `tunnel_support`); run through
//! `scripts/test-tunnel.sh`.

mod tunnel_support;

use std::net::SocketAddr;

use bytes::Bytes;
use dispatch_gateway::tunnel::{self, Destination, Subdomain, TunnelConfig};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tunnel_support::{
    DEADLINE, GatewayProcess, TunnelServer, host_of, id_of, visitor, wait_for_url,
};
use warp::Filter;

/// A small web app standing in for the gateway: `/hello` says which `Host`
/// it was asked for, `/echo` returns the body, `/ws` echoes messages.
struct Upstream {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Upstream {
    async fn start() -> Self {
        let hello = warp::path("hello")
            .and(warp::header::optional::<String>("host"))
            .map(|host: Option<String>| format!("hello, {}", host.unwrap_or_default()));
        let echo = warp::path("echo")
            .and(warp::post())
            .and(warp::body::content_length_limit(8 << 20))
            .and(warp::body::bytes())
            .map(|body: Bytes| body.to_vec());
        let ws = warp::path("ws").and(warp::ws()).map(|ws: warp::ws::Ws| {
            ws.on_upgrade(|socket| async move {
                let (tx, rx) = socket.split();
                let _ = rx.forward(tx).await;
            })
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = warp::serve(hello.or(echo).or(ws))
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            });
        tokio::spawn(server.run());
        Self { addr, _stop: stop }
    }
}

/// A running tunnel client and its public-URL state.
struct Tunnel {
    urls: watch::Receiver<Option<String>>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Tunnel {
    fn open(server: &str, subdomain: Option<&str>, local: SocketAddr) -> Self {
        let subdomain = subdomain.map(|s| s.parse::<Subdomain>().unwrap());
        let config = TunnelConfig::new(server, subdomain, Destination::dial(local)).unwrap();
        let (tx, urls) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let publish = move |url| {
            tx.send_replace(url);
        };
        let task = tokio::spawn(tunnel::run(config, publish, shutdown.clone()));
        Self {
            urls,
            shutdown,
            task,
        }
    }

    async fn url(&mut self) -> String {
        wait_for_url(&mut self.urls, "a public URL", Option::is_some)
            .await
            .unwrap()
    }

    async fn close(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the tunnel did not stop on shutdown")
            .unwrap();
    }
}

async fn get_text(client: &reqwest::Client, url: &str) -> (reqwest::StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn announces_a_new_url_and_carries_http() {
    let server = TunnelServer::start("lt.test").await;
    let upstream = Upstream::start().await;
    let mut tunnel = Tunnel::open(&server.url(), None, upstream.addr);

    let url = tunnel.url().await;
    let host = host_of(&url);
    let id = host
        .strip_suffix(".lt.test")
        .expect("url on the server's domain");
    assert!(url.starts_with("http://") && !id.is_empty(), "{url}");
    // The pool holds as many connections as the server allows (10).
    server.wait_for_sockets(id, Some(10)).await;

    let client = visitor(&url, server.addr());
    let (status, body) = get_text(&client, &format!("{url}/hello")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        format!("hello, {host}"),
        "the public Host reaches the app"
    );

    // A body far larger than any buffer, both ways.
    let payload: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let echoed = client
        .post(format!("{url}/echo"))
        .body(payload.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(echoed == payload, "the echoed body differs");

    // More visitors at once than the server lets the pool hold.
    let hello = format!("{url}/hello");
    let requests = (0..40).map(|_| get_text(&client, &hello));
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!((status.as_u16(), body), (200, format!("hello, {host}")));
    }
    // The server keeps one used connection and closes the others: the pool
    // re-opens them under the same registration.
    server.wait_for_sockets(id, Some(10)).await;
    assert!(
        !tunnel.urls.has_changed().unwrap(),
        "the tunnel registered again instead of re-opening its connections"
    );
    assert_eq!(tunnel.url().await, url);
    tunnel.close().await;
}

#[tokio::test]
async fn asks_for_the_configured_subdomain() {
    let server = TunnelServer::start("lt.test").await;
    let upstream = Upstream::start().await;
    let mut tunnel = Tunnel::open(&server.url(), Some("my-dispatch"), upstream.addr);

    let url = tunnel.url().await;
    assert_eq!(url, "http://my-dispatch.lt.test");
    let client = visitor(&url, server.addr());
    let (status, body) = get_text(&client, &format!("{url}/hello")).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (200, "hello, my-dispatch.lt.test")
    );
    tunnel.close().await;
}

#[tokio::test]
async fn carries_websockets() {
    let server = TunnelServer::start("lt.test").await;
    let upstream = Upstream::start().await;
    let mut tunnel = Tunnel::open(&server.url(), None, upstream.addr);
    let url = tunnel.url().await;

    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let ws_url = format!("ws://{}/ws", host_of(&url));
    let (mut ws, response) = tokio_tungstenite::client_async(ws_url, stream)
        .await
        .expect("the WebSocket upgrade goes through the tunnel");
    assert_eq!(response.status(), 101);

    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 256) as u8).collect();
    let messages = [
        Message::text("hello through the tunnel"),
        Message::binary(big),
        Message::text("bye"),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("echo in time")
            .expect("socket open")
            .unwrap();
        assert_eq!(echoed, message);
    }
    ws.close(None).await.unwrap();
    tunnel.close().await;
}

#[tokio::test]
async fn registers_again_after_the_server_restarts() {
    let server = TunnelServer::start("lt.test").await;
    let port = server.port();
    let upstream = Upstream::start().await;
    let mut tunnel = Tunnel::open(&server.url(), None, upstream.addr);
    let first = tunnel.url().await;
    assert!(first.ends_with(".lt.test"), "{first}");

    server.stop().await;
    wait_for_url(
        &mut tunnel.urls,
        "no URL while the server is down",
        Option::is_none,
    )
    .await;

    // The same address, now serving another domain: only a new
    // registration can produce a URL on it.
    let server = TunnelServer::start_on(port, "lt2.test").await;
    let second = tunnel.url().await;
    assert!(second.ends_with(".lt2.test"), "{second}");

    let client = visitor(&second, server.addr());
    let (status, body) = get_text(&client, &format!("{second}/hello")).await;
    assert_eq!(
        (status.as_u16(), body),
        (200, format!("hello, {}", host_of(&second)))
    );
    tunnel.close().await;
}

#[tokio::test]
async fn waits_for_a_server_that_is_not_up_yet() {
    // Reserve a port, free it, and point the tunnel there before any server.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = Upstream::start().await;
    let mut tunnel = Tunnel::open(&format!("http://127.0.0.1:{port}"), None, upstream.addr);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(*tunnel.urls.borrow(), None, "no URL without a server");

    let server = TunnelServer::start_on(port, "lt.test").await;
    let url = tunnel.url().await;
    let client = visitor(&url, server.addr());
    let (status, _) = get_text(&client, &format!("{url}/hello")).await;
    assert_eq!(status, 200);
    tunnel.close().await;
}

#[tokio::test]
async fn shutdown_closes_the_tunnel() {
    let server = TunnelServer::start("lt.test").await;
    let upstream = Upstream::start().await;
    let mut tunnel = Tunnel::open(&server.url(), None, upstream.addr);
    let url = tunnel.url().await;
    let client = visitor(&url, server.addr());
    assert_eq!(get_text(&client, &format!("{url}/hello")).await.0, 200);

    let mut urls = tunnel.urls.clone();
    tunnel.close().await;
    assert_eq!(*urls.borrow_and_update(), None);
    // With every connection closed, the server forgets the tunnel.
    server.wait_for_sockets(&id_of(&url), None).await;
}

// The gateway itself behind the tunnel.

const KEY: &str = "tunnel-test-key-4f1d9c";

/// Someone on the internet using the public URL: every request goes to the
/// tunnel server, addressed to the tunnel's public host.
struct PublicVisitor {
    url: String,
    server: SocketAddr,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl PublicVisitor {
    fn new(url: &str, server: SocketAddr) -> Self {
        Self {
            url: url.to_owned(),
            server,
            http: visitor(url, server),
            cookie: None,
        }
    }

    /// `POST /api/login` from the public page; keeps the cookie.
    async fn login(&mut self, key: &str) -> reqwest::StatusCode {
        let response = self
            .http
            .post(format!("{}/api/login", self.url))
            .header("origin", &self.url)
            .json(&serde_json::json!({ "key": key }))
            .send()
            .await
            .unwrap();
        if let Some(cookie) = response.headers().get("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        }
        response.status()
    }

    /// `POST /api/sessions` for a shell; returns the session id.
    async fn create_shell(&self) -> String {
        let response = self
            .http
            .post(format!("{}/api/sessions", self.url))
            .header("origin", &self.url)
            .header("cookie", self.cookie.as_deref().expect("logged in"))
            .json(&serde_json::json!({ "mode": "shell", "cols": 80, "rows": 24 }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 201, "creating a session: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Opens the terminal WebSocket of session `id` with this `Origin`.
    async fn terminal(
        &self,
        id: &str,
        origin: &str,
    ) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error>
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = reqwest::Url::parse(&self.url).unwrap();
        let host = match url.port() {
            Some(port) => format!("{}:{port}", host_of(&self.url)),
            None => host_of(&self.url),
        };
        let mut request = format!("ws://{host}/ws/sessions/{id}?cols=80&rows=24")
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", origin.parse().unwrap());
        if let Some(cookie) = &self.cookie {
            headers.insert("cookie", cookie.parse().unwrap());
        }
        let stream = TcpStream::connect(self.server).await.unwrap();
        tokio_tungstenite::client_async(request, stream)
            .await
            .map(|(ws, _)| ws)
    }
}

/// A terminal WebSocket that acknowledges what it receives, as the web UI
/// does (`ack` counts every binary byte received on the socket).
struct Terminal {
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
    received: usize,
}

impl Terminal {
    fn new(ws: tokio_tungstenite::WebSocketStream<TcpStream>) -> Self {
        Self { ws, received: 0 }
    }

    /// The next message; binary frames are counted, acknowledged and returned.
    async fn next(&mut self) -> Message {
        let message = tokio::time::timeout(DEADLINE, self.ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("terminal socket error");
        if let Message::Binary(bytes) = &message {
            self.received += bytes.len();
            let ack = serde_json::json!({ "type": "ack", "bytes": self.received });
            self.ws.send(Message::text(ack.to_string())).await.unwrap();
        }
        message
    }

    /// The next control message.
    async fn control(&mut self) -> serde_json::Value {
        loop {
            if let Message::Text(text) = self.next().await {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Types `command` and waits until the output contains `expected`.
    async fn run(&mut self, command: &str, expected: &str) {
        let input = Message::binary(format!("{command}\r").into_bytes());
        self.ws.send(input).await.unwrap();
        let mut output = Vec::new();
        while !String::from_utf8_lossy(&output).contains(expected) {
            match self.next().await {
                Message::Binary(bytes) => output.extend_from_slice(&bytes),
                Message::Close(frame) => panic!("terminal closed: {frame:?}"),
                _ => {}
            }
        }
    }
}

/// A gateway with the tunnel on, registered as `dispatch-e2e`.
async fn gateway_behind(server: &TunnelServer) -> (GatewayProcess, String) {
    let lt_host = server.url();
    let gateway = GatewayProcess::start(&[
        ("TERMINAL_KEY", KEY),
        ("ENABLE_TUNNEL", "true"),
        ("LT_HOST", &lt_host),
        ("LT_SUBDOMAIN", "dispatch-e2e"),
    ])
    .await;
    let url = gateway
        .wait_for_public_url("the public URL", Option::is_some)
        .await
        .unwrap();
    (gateway, url)
}

#[tokio::test]
async fn gateway_announces_its_public_url_and_logs_in_through_it() {
    let server = TunnelServer::start("lt.test").await;
    let (gateway, url) = gateway_behind(&server).await;
    assert_eq!(url, "http://dispatch-e2e.lt.test");
    // The gateway keeps the pool the server allows (10 connections).
    server.wait_for_sockets("dispatch-e2e", Some(10)).await;

    let mut visitor = PublicVisitor::new(&url, server.addr());
    assert_eq!(visitor.login("wrong key").await, 401);
    assert_eq!(visitor.login(KEY).await, 204);

    // The Origin check applies to the public host: a cross-site WebSocket
    // is refused before anything else.
    let id = "7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01";
    let refused = visitor.terminal(id, "http://evil.example").await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
        "a cross-site WebSocket went through: {refused:?}"
    );

    // On shutdown the gateway closes its connections: the server forgets it.
    assert!(gateway.stop().await.success());
    server.wait_for_sockets("dispatch-e2e", None).await;
}

#[tokio::test]
async fn gateway_serves_terminals_through_its_public_url() {
    let server = TunnelServer::start("lt.test").await;
    let (gateway, url) = gateway_behind(&server).await;

    let mut visitor = PublicVisitor::new(&url, server.addr());
    assert_eq!(visitor.login(KEY).await, 204);
    let id = visitor.create_shell().await;

    let ws = visitor
        .terminal(&id, &url)
        .await
        .expect("the terminal WebSocket opens through the tunnel");
    let mut terminal = Terminal::new(ws);
    let attached = terminal.control().await;
    assert_eq!(attached["type"], "attached", "{attached}");
    terminal.run("echo tunnel-$((6*7))", "tunnel-42").await;
    terminal.ws.close(None).await.unwrap();

    // A second socket to the same session, as after a reconnection.
    let ws = visitor.terminal(&id, &url).await.expect("reattach");
    let mut terminal = Terminal::new(ws);
    terminal.run("echo again-$((7*6))", "again-42").await;
    terminal.ws.close(None).await.unwrap();
    assert!(gateway.stop().await.success());
}

#[tokio::test]
async fn gateway_public_url_follows_a_tunnel_server_restart() {
    let server = TunnelServer::start("lt.test").await;
    let port = server.port();
    let lt_host = server.url();
    let gateway = GatewayProcess::start(&[
        ("TERMINAL_KEY", KEY),
        ("ENABLE_TUNNEL", "true"),
        ("LT_HOST", &lt_host),
    ])
    .await;
    let first = gateway
        .wait_for_public_url("the first URL", Option::is_some)
        .await
        .unwrap();
    assert!(first.ends_with(".lt.test"), "{first}");

    server.stop().await;
    gateway
        .wait_for_public_url("null while the server is down", Option::is_none)
        .await;

    let server = TunnelServer::start_on(port, "lt2.test").await;
    let second = gateway
        .wait_for_public_url("a URL from the restarted server", |url| {
            url.as_deref().is_some_and(|u| u.ends_with(".lt2.test"))
        })
        .await
        .unwrap();
    let mut visitor = PublicVisitor::new(&second, server.addr());
    assert_eq!(visitor.login(KEY).await, 204);
    assert!(gateway.stop().await.success());
}

#[tokio::test]
async fn gateway_refuses_to_open_a_tunnel_with_the_default_key() {
    for key in [None, Some("change-me")] {
        let mut vars = vec![("ENABLE_TUNNEL", "true"), ("LT_HOST", "http://127.0.0.1:9")];
        vars.extend(key.map(|key| ("TERMINAL_KEY", key)));
        let (status, stderr) = GatewayProcess::run_to_exit(&vars).await;
        assert!(!status.success(), "started with key {key:?}");
        assert!(
            stderr.contains("ERROR: TERMINAL_KEY must be set when ENABLE_TUNNEL=true for security"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn gateway_refuses_bad_tunnel_settings() {
    let cases = [
        ("LT_SUBDOMAIN", "Not_A_Subdomain", "invalid LT_SUBDOMAIN"),
        ("LT_HOST", "localtunnel.me", "invalid LT_HOST"),
    ];
    for (name, value, message) in cases {
        let vars = [
            ("TERMINAL_KEY", KEY),
            ("ENABLE_TUNNEL", "true"),
            (name, value),
        ];
        let (status, stderr) = GatewayProcess::run_to_exit(&vars).await;
        assert!(!status.success(), "started with {name}={value}");
        assert!(stderr.contains(message), "{stderr}");
    }
}
