//! Local mode: when `BROKER_URL` is unset, the gateway runs its own
//! `dispatch-broker` child on a Unix socket in a private (0700) temporary
//! directory, with a freshly generated `BROKER_TOKEN`. The child never sees
//! `TERMINAL_KEY`. It is restarted with backoff when it dies and stopped
//! (SIGTERM, then SIGKILL) when the gateway shuts down.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Variables of the gateway's own that a broker child must not inherit.
const WITHHELD_ENV: &[&str] = &[
    "TERMINAL_KEY",
    "BROKER_URL",
    "BROKER_BIN",
    "BROKER_TOKEN",
    "BROKER_LISTEN",
    "EGRESS_PROXY_URL",
];

/// A supervised broker child.
#[derive(Debug)]
pub struct LocalBroker {
    /// `unix:<dir>/broker.sock`.
    pub url: String,
    /// The generated token.
    pub token: String,
    supervisor: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl LocalBroker {
    /// Starts the supervisor (the first child is spawned right away).
    /// `egress_proxy_url` is the gateway's egress proxy, given to the child
    /// as `EGRESS_PROXY_URL` so that its sessions use it.
    pub fn start(
        bin: Option<PathBuf>,
        egress_proxy_url: Option<String>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let bin = locate_broker(bin)?;
        let dir = tempfile::Builder::new()
            .prefix("dispatch-broker-")
            .tempdir()
            .context("creating the broker's socket directory")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let socket = dir.path().join("broker.sock");
        let url = format!("unix:{}", socket.display());
        let token = crate::auth::random_secret();
        tracing::info!(bin = %bin.display(), "starting a local broker on a private Unix socket");
        let supervisor = tokio::spawn(supervise(
            bin,
            socket,
            url.clone(),
            token.clone(),
            egress_proxy_url,
            shutdown,
        ));
        Ok(Self {
            url,
            token,
            supervisor,
            _dir: dir,
        })
    }

    /// Waits until the child has been stopped (after shutdown was signalled).
    pub async fn stopped(self) {
        let _ = self.supervisor.await;
    }
}

/// `BROKER_BIN`, else `dispatch-broker` beside this executable, else on `PATH`.
fn locate_broker(bin: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(bin) = bin {
        return Ok(bin);
    }
    let exe = std::env::current_exe().context("locating the gateway's executable")?;
    let beside = exe.with_file_name("dispatch-broker");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("dispatch-broker"))
                .find(|path| path.is_file())
        })
        .context(
            "dispatch-broker not found beside the gateway or on PATH: set BROKER_BIN or BROKER_URL",
        )
}

async fn supervise(
    bin: PathBuf,
    socket: PathBuf,
    url: String,
    token: String,
    egress_proxy_url: Option<String>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let started = Instant::now();
        let mut child = match spawn(&bin, &socket, &url, &token, egress_proxy_url.as_deref()) {
            Ok(child) => child,
            Err(err) => {
                tracing::error!("could not start the broker: {err:#}");
                if sleep_or_shutdown(backoff, &shutdown).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        tokio::select! {
            status = child.wait() => {
                tracing::error!(?status, "the broker exited; restarting it");
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(250);
                }
                if sleep_or_shutdown(backoff, &shutdown).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            _ = shutdown.cancelled() => {
                stop(&mut child).await;
                return;
            }
        }
    }
}

fn spawn(
    bin: &Path,
    socket: &Path,
    url: &str,
    token: &str,
    egress_proxy_url: Option<&str>,
) -> anyhow::Result<Child> {
    let _ = std::fs::remove_file(socket);
    let mut command = Command::new(bin);
    for name in WITHHELD_ENV {
        command.env_remove(name);
    }
    command
        .env("BROKER_LISTEN", url)
        .env("BROKER_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(proxy) = egress_proxy_url {
        command.env("EGRESS_PROXY_URL", proxy);
    }
    die_with_parent(&mut command);
    command
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))
}

/// Asks the kernel to send the child SIGTERM if the gateway dies without
/// stopping it (SIGKILL, crash), so no broker is left orphaned.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

/// SIGTERM, then SIGKILL after 5 seconds.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        tracing::warn!("the broker did not stop within 5 s; killing it");
        let _ = child.kill().await;
    }
}

/// Sleeps; `true` when shutdown came first.
async fn sleep_or_shutdown(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = shutdown.cancelled() => true,
    }
}
