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

use dispatch_testkit::{announce, launch};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

/// Generous limit for anything that waits on the machine.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Limit for a process to start: Node or a debug build on a loaded machine.
const STARTUP: Duration = Duration::from_secs(120);

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
        let port = tokio::time::timeout(STARTUP, port_rx)
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

/// A `dispatch-gateway` process (with its own broker child) on 127.0.0.1.
pub struct GatewayProcess {
    child: Child,
    addr: SocketAddr,
    _sessions: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts the gateway on an ephemeral port with `vars` set, and waits
    /// until it listens.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let sessions = tempfile::tempdir().unwrap();
        let mut child = Self::command(vars, &sessions)
            .spawn()
            .expect("cannot start dispatch-gateway");
        tokio::spawn(forward_gateway_log(child.stderr.take().unwrap()));
        let addr = launch::announced_addr(&mut child, announce::GATEWAY_LISTENING, STARTUP)
            .await
            .expect("the gateway listens");
        Self {
            child,
            addr,
            _sessions: sessions,
        }
    }

    /// Runs the gateway with `vars` until it exits by itself; returns its
    /// exit status and what it printed on stderr.
    pub async fn run_to_exit(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let sessions = tempfile::tempdir().unwrap();
        let child = Self::command(vars, &sessions)
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start dispatch-gateway");
        let output = tokio::time::timeout(STARTUP, child.wait_with_output())
            .await
            .expect("the gateway kept running")
            .unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The gateway command ([`launch::command`]: none of the machine's
    /// settings) with `vars`.
    fn command(vars: &[(&str, &str)], sessions: &tempfile::TempDir) -> Command {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_dispatch-gateway"));
        let mut command = launch::command(bin);
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("PTY_ROOT", sessions.path())
            // Shells start from an empty HOME: no profile of this machine's.
            .env("HOME", sessions.path())
            .env("RUST_LOG", "info,dispatch_gateway::tunnel=debug")
            .envs(vars.iter().copied())
            .stderr(Stdio::piped());
        command
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gateway's `/public-url` answer.
    pub async fn public_url(&self) -> Option<String> {
        let url = format!("http://{}/public-url", self.addr);
        let answer: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        let url = &answer["url"];
        assert!(
            url.is_null() || url.is_string(),
            "bad /public-url: {answer}"
        );
        url.as_str().map(str::to_owned)
    }

    /// Polls `/public-url` until `accept` holds, and returns it.
    pub async fn wait_for_public_url(
        &self,
        what: &str,
        mut accept: impl FnMut(&Option<String>) -> bool,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let url = self.public_url().await;
            if accept(&url) {
                return url;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; /public-url is {url:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the gateway with SIGTERM and waits for it to exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the gateway did not stop on SIGTERM")
            .unwrap()
    }
}

async fn forward_gateway_log(stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[gateway] {line}");
    }
}
