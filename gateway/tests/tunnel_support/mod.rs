//! Test peers of the tunnel tests: a real LocalTunnel server process on
//! loopback, and a visitor that reaches a tunnel through it.
//!
//! The server is started by the executable named in
//! `DISPATCH_TEST_LT_SERVER` (scripts/test-tunnel.sh installs one and sets
//! it), with `--port`, `--address 127.0.0.1` and `--domain`. It routes by the
//! first label of the `Host` header, so the visitor connects to the server's
//! loopback port while naming the tunnel's public host.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

/// Generous limit for anything that waits on the machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

const SERVER_ENV: &str = "DISPATCH_TEST_LT_SERVER";

/// A LocalTunnel server process listening on 127.0.0.1.
pub struct TunnelServer {
    child: Child,
    port: u16,
    domain: String,
}

impl TunnelServer {
    /// Starts a server for `domain` on an ephemeral port.
    pub async fn start(domain: &str) -> Self {
        Self::start_on(0, domain).await
    }

    /// Starts a server for `domain` on `port` (0: any free port).
    pub async fn start_on(port: u16, domain: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let program = std::env::var(SERVER_ENV).unwrap_or_else(|_| {
            panic!(
                "{SERVER_ENV} must name the LocalTunnel server to test against; \
                 run these tests through scripts/test-tunnel.sh"
            )
        });
        let mut child = Command::new(&program)
            .args(["--port", &port.to_string(), "--address", "127.0.0.1"])
            .args(["--domain", domain])
            .env("DEBUG", "localtunnel,lt:*")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let (port_tx, port_rx) = oneshot::channel();
        tokio::spawn(forward_log(child.stderr.take().unwrap(), port_tx));
        let port = tokio::time::timeout(DEADLINE, port_rx)
            .await
            .expect("the LocalTunnel server did not say which port it listens on")
            .expect("the LocalTunnel server exited before listening");
        Self {
            child,
            port,
            domain: domain.to_owned(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The `LT_HOST` value that reaches this server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// How many pool connections the server holds for tunnel `id`; `None`
    /// once it no longer knows the tunnel.
    pub async fn connected_sockets(&self, id: &str) -> Option<u64> {
        let url = format!("{}/api/tunnels/{id}/status", self.url());
        let response = reqwest::get(url).await.unwrap();
        if response.status() == 404 {
            return None;
        }
        let status: serde_json::Value = response.json().await.unwrap();
        Some(status["connected_sockets"].as_u64().unwrap())
    }

    /// Polls until the server's count of connections for `id` is `expected`.
    pub async fn wait_for_sockets(&self, id: &str, expected: Option<u64>) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let count = self.connected_sockets(id).await;
            if count == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "tunnel {id}: {count:?} connections, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server and waits until it is gone.
    pub async fn stop(mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the LocalTunnel server did not exit")
            .unwrap();
    }
}

/// Copies the server's log to the test output and reports its port.
async fn forward_log(stderr: tokio::process::ChildStderr, port_tx: oneshot::Sender<u16>) {
    let mut port_tx = Some(port_tx);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[lt-server] {line}");
        if let Some(port) = line
            .split("listening on port: ")
            .nth(1)
            .and_then(|rest| rest.trim().parse().ok())
            && let Some(tx) = port_tx.take()
        {
            let _ = tx.send(port);
        }
    }
}

/// Waits until the public URL satisfies `accept`, and returns it.
pub async fn wait_for_url(
    urls: &mut watch::Receiver<Option<String>>,
    what: &str,
    accept: impl FnMut(&Option<String>) -> bool,
) -> Option<String> {
    let waited = tokio::time::timeout(DEADLINE, urls.wait_for(accept))
        .await
        .map(|seen| seen.map(|url| url.clone()));
    match waited {
        Ok(url) => url.expect("the tunnel dropped its public-URL state"),
        Err(_) => panic!("timed out waiting for {what}; last: {:?}", *urls.borrow()),
    }
}

/// The host name of a public URL such as `http://abc.lt.test`.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned()
}

/// The tunnel id: the first label of the public host.
pub fn id_of(url: &str) -> String {
    host_of(url).split('.').next().unwrap().to_owned()
}

/// An HTTP client that reaches `public_url`'s host through `server`, as a
/// visitor's DNS would.
pub fn visitor(public_url: &str, server: SocketAddr) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .resolve(&host_of(public_url), server)
        .timeout(DEADLINE)
        .build()
        .unwrap()
}
