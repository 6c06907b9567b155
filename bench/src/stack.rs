//! The stack most benchmarks run: a `dispatch-broker` and a
//! `dispatch-gateway` in front of it over a Unix socket, in a temporary
//! folder, started as [`launch`] starts them (every variable they read
//! cleared first); and the raw HTTP/1.1 exchange the benchmarks speak to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use dispatch_testkit::{announce, launch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Child;

/// The gateway's access key.
pub const KEY: &str = "bench-stack-key-4b7d2e91c6a0f358";
/// The token between the gateway and the broker.
pub const TOKEN: &str = "bench-stack-broker-token-9e2c41d7";
/// Limit for either binary to announce itself.
const DEADLINE: Duration = Duration::from_secs(30);

/// The two binaries of a build.
pub struct Binaries {
    pub gateway: PathBuf,
    pub broker: PathBuf,
}

impl Binaries {
    /// The gateway at `gateway` (default: beside this executable) and the
    /// broker beside it; an error naming any that is missing.
    pub fn find(gateway: Option<&Path>) -> anyhow::Result<Self> {
        let gateway = match gateway {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe()?.with_file_name("dispatch-gateway"),
        };
        let binaries = Self {
            broker: gateway.with_file_name("dispatch-broker"),
            gateway,
        };
        for bin in [&binaries.gateway, &binaries.broker] {
            if !bin.exists() {
                bail!(
                    "{} not found: build it first (cargo build --release --workspace)",
                    bin.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// A broker and a gateway in front of it, in a temporary folder.
pub struct Stack {
    broker: Child,
    gateway: Child,
    /// The gateway's HTTP address.
    pub http: SocketAddr,
    /// The lines of the announcements asked for beyond the HTTP address.
    pub announced: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Starts both; `env` goes to both (each takes what it reads), and the
    /// gateway must print `announcements` (their lines kept in
    /// [`Stack::announced`]) and then its HTTP address.
    pub async fn start(
        bins: &Binaries,
        env: &[(&str, String)],
        announcements: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (home, sessions) = (dir.path().join("home"), dir.path().join("sessions"));
        std::fs::create_dir(&home)?;
        std::fs::create_dir(&sessions)?;
        let socket = format!("unix:{}", dir.path().join("broker.sock").display());
        let mut broker = spawn(&bins.broker, &home, env, |command| {
            command
                .env("BROKER_LISTEN", &socket)
                .env("PTY_ROOT", &sessions)
                .env("SHELL", "/bin/sh");
        })?;
        launch::announced(&mut broker, announce::BROKER_LISTENING, DEADLINE).await?;
        let mut gateway = spawn(&bins.gateway, &home, env, |command| {
            command
                .env("BROKER_URL", &socket)
                .env("TERMINAL_KEY", KEY)
                .env("HOST", "127.0.0.1")
                .env("PORT", "0")
                .env("STATE_DIR", dir.path().join("state"))
                .env_remove("ENABLE_TUNNEL");
        })?;
        let mut prefixes = announcements.to_vec();
        prefixes.push(announce::GATEWAY_LISTENING);
        let mut announced = launch::announced_all(&mut gateway, &prefixes, DEADLINE).await?;
        let listening = announced.pop().unwrap_or_default();
        let http = announce::socket_addr(&listening)
            .with_context(|| format!("no address in {listening:?}"))?;
        Ok(Self {
            broker,
            gateway,
            http,
            announced,
            _dir: dir,
        })
    }

    /// The gateway's process id (0 once it exited).
    pub fn gateway_pid(&self) -> u32 {
        self.gateway.id().unwrap_or(0)
    }

    /// One HTTP/1.1 request with the bearer key: the status and the body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let bearer = format!("Bearer {KEY}");
        http(self.http, method, path, &[("Authorization", &bearer)], body).await
    }

    /// Creates a shell session of 80x24; the session as the gateway shows it.
    pub async fn create_session(&self) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::json!({"mode": "shell", "cols": 80, "rows": 24}).to_string();
        let (status, body) = self.request("POST", "/api/sessions", &body).await?;
        let session: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != 201 {
            bail!("creating a session: {status} {session}");
        }
        Ok(session)
    }

    /// Creates a shell session; its id.
    pub async fn create_session_id(&self) -> anyhow::Result<String> {
        let session = self.create_session().await?;
        session["id"]
            .as_str()
            .map(str::to_owned)
            .context("no session id")
    }

    /// Ends a session, if it is there.
    pub async fn end_session(&self, id: &str) {
        let _ = self
            .request("DELETE", &format!("/api/sessions/{id}"), "")
            .await;
    }

    /// Stops the gateway, then the broker (SIGTERM, then a bounded wait).
    pub async fn stop(mut self) {
        for child in [&mut self.gateway, &mut self.broker] {
            if let Some(pid) = child.id() {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            }
        }
    }
}

/// Starts `bin` with the stack's shared settings, what `own` adds, then
/// `env`.
fn spawn(
    bin: &Path,
    home: &Path,
    env: &[(&str, String)],
    own: impl FnOnce(&mut tokio::process::Command),
) -> anyhow::Result<Child> {
    let mut command = launch::command(bin);
    command
        .env("BROKER_TOKEN", TOKEN)
        .env("HOME", home)
        .env("RUST_LOG", "error");
    own(&mut command);
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// A raw HTTP/1.1 exchange: the status and the body as sent (chunks joined,
/// not decoded).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    parse_response(&response)
}

/// The status and body of a whole HTTP/1.1 response.
fn parse_response(response: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let split = memchr::memmem::find(response, b"\r\n\r\n").context("no HTTP header end")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let body = &response[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        return Ok((status, dechunk(body)));
    }
    Ok((status, body.to_vec()))
}

/// The body of a chunked transfer, its chunks joined.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = memchr::memmem::find(body, b"\r\n") {
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[(eol + 4 + size).min(body.len())..];
    }
    out
}
