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
use tunnel_support::{DEADLINE, TunnelServer, host_of, id_of, visitor, wait_for_url};
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
