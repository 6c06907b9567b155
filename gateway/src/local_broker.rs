//! Local mode: when `BROKER_URL` is unset, the gateway runs `dispatch-broker`
//! itself, on a Unix socket in a private runtime directory,
//! `STATE_DIR/broker` (0700), beside a 0600 file holding the broker's
//! generated token. The broker never sees `TERMINAL_KEY`.
//!
//! The broker outlives its gateway: it runs in its own process group, is not
//! stopped when the gateway exits (cleanly or by `kill -9`), and a gateway
//! started later on the same `STATE_DIR` finds it on that socket and takes
//! its sessions back. It stops by itself once it has had no session and no
//! gateway for `LOCAL_BROKER_IDLE_EXIT_SECS`, or once its socket is removed.
//! One gateway at a time supervises it (an exclusive lock on
//! `gateway.lock`), restarting it with backoff when it dies.
//! [`stop`] (`dispatch-gateway stop`) ends the gateway, the broker and every
//! session for good.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state_dir::StateDir;

/// The runtime directory, under the state directory.
pub const RUNTIME_DIR: &str = "broker";
/// The broker's Unix socket, in the runtime directory.
pub const SOCKET_FILE: &str = "broker.sock";
/// The broker's generated token (0600).
pub const TOKEN_FILE: &str = "broker.token";
/// The broker's process id.
pub const PID_FILE: &str = "broker.pid";
/// The egress proxy URL the broker was started with (empty: none).
const EGRESS_FILE: &str = "broker.egress";
/// The broker's standard output and error.
const LOG_FILE: &str = "broker.log";
/// Held (flock) by the supervising gateway; holds its process id.
const LOCK_FILE: &str = "gateway.lock";
/// A log longer than this is set aside (`broker.log.old`) at the next start.
const LOG_ROTATE_BYTES: u64 = 4 << 20;
/// How long a starting gateway waits for a stopping one to let go.
const LOCK_WAIT: Duration = Duration::from_secs(15);
/// How often the supervisor checks that the broker still answers.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest Unix socket path (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Variables of the gateway's own that the broker must not inherit.
const WITHHELD_ENV: &[&str] = &[
    "TERMINAL_KEY",
    "BROKER_URL",
    "BROKER_BIN",
    "BROKER_TOKEN",
    "BROKER_LISTEN",
    "EGRESS_PROXY_URL",
    "BROKER_IDLE_EXIT_SECS",
];

/// What the local broker is started with.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// `BROKER_BIN`.
    pub bin: Option<PathBuf>,
    /// The gateway's state directory; the runtime directory goes inside.
    pub state_dir: PathBuf,
    /// The gateway's egress proxy, given to the broker as `EGRESS_PROXY_URL`.
    pub egress_proxy_url: Option<String>,
    /// `BROKER_IDLE_EXIT_SECS` of the broker.
    pub idle_exit_secs: u64,
}

/// The supervised local broker (started here or found running).
#[derive(Debug)]
pub struct LocalBroker {
    /// `unix:<runtime dir>/broker.sock`.
    pub url: String,
    /// The broker's token.
    pub token: String,
    supervisor: JoinHandle<()>,
    _lock: Flock<File>,
}

impl LocalBroker {
    /// Takes the supervisor lock, then adopts the broker answering on the
    /// socket or starts one; the supervisor task keeps it running until
    /// `shutdown` (and leaves it running after).
    pub fn start(options: LocalOptions, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let bin = locate_broker(options.bin.clone())?;
        let runtime = open_runtime_dir(&options.state_dir)?;
        let lock = lock_supervisor(&runtime)?;
        let socket = runtime.path().join(SOCKET_FILE);
        let url = format!("unix:{}", socket.display());
        let running = answers(&socket);
        let token = match running {
            true => adopted_token(&runtime, &options)?,
            false => fresh_token(&runtime)?,
        };
        let supervisor = Supervisor {
            bin,
            runtime,
            socket,
            url: url.clone(),
            token: token.clone(),
            options,
        };
        let supervisor = tokio::spawn(supervisor.run(running, shutdown));
        Ok(Self {
            url,
            token,
            supervisor,
            _lock: lock,
        })
    }

    /// Waits until the supervisor has let go (after shutdown was signalled);
    /// the broker keeps running.
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

/// `STATE_DIR/broker`, 0700, with a socket path short enough to bind.
fn open_runtime_dir(state_dir: &Path) -> anyhow::Result<StateDir> {
    let path = state_dir.join(RUNTIME_DIR);
    let socket = path.join(SOCKET_FILE);
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        anyhow::bail!(
            "ERROR: the local broker's socket path {} is longer than {MAX_SOCKET_PATH} bytes: \
             set STATE_DIR to a shorter directory",
            socket.display()
        );
    }
    let dir = StateDir::open(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// The exclusive lock of the supervising gateway, waiting [`LOCK_WAIT`] for
/// a gateway that is stopping; records this process's id in it.
fn lock_supervisor(runtime: &StateDir) -> anyhow::Result<Flock<File>> {
    use std::io::{Seek, Write};
    let path = runtime.path().join(LOCK_FILE);
    let deadline = Instant::now() + LOCK_WAIT;
    let mut lock = loop {
        match try_lock(&path)? {
            Ok(lock) => break lock,
            Err(holder) if Instant::now() >= deadline => anyhow::bail!(
                "ERROR: another dispatch-gateway (pid {holder}) runs the local broker of {}: \
                 stop it first (dispatch-gateway stop) or set another STATE_DIR",
                runtime.path().display()
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(&mut *lock, "{}", std::process::id())?;
    Ok(lock)
}

/// The lock, or the process id its holder recorded.
fn try_lock(path: &Path) -> anyhow::Result<Result<Flock<File>, String>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Ok(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            Ok(Err(holder.trim().to_string()))
        }
        Err((_, errno)) => Err(errno).with_context(|| format!("locking {}", path.display())),
    }
}

/// Whether something accepts connections on `socket`.
fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// The token of the broker found running, which must have been started with
/// this gateway's egress proxy (else a warning says how to apply it).
fn adopted_token(runtime: &StateDir, options: &LocalOptions) -> anyhow::Result<String> {
    let token = runtime
        .read(TOKEN_FILE)?
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .filter(|token| !token.is_empty())
        .with_context(|| {
            format!(
                "ERROR: a broker answers on {} but its token file is missing: \
                 end it with `dispatch-gateway stop`",
                runtime.path().join(SOCKET_FILE).display()
            )
        })?;
    let started_with = runtime.read(EGRESS_FILE)?.unwrap_or_default();
    let wanted = options.egress_proxy_url.as_deref().unwrap_or("");
    if started_with != wanted.as_bytes() {
        tracing::warn!(
            started_with = %String::from_utf8_lossy(&started_with),
            wanted,
            "the running local broker was started with another EGRESS_PROXY_URL: its sessions, \
             old and new, keep that one until `dispatch-gateway stop` ends the broker"
        );
    }
    tracing::info!("found the local broker running: taking its sessions back");
    Ok(token)
}

/// A new token, written to the token file before the broker starts.
fn fresh_token(runtime: &StateDir) -> anyhow::Result<String> {
    let token = crate::auth::random_secret();
    runtime
        .replace(TOKEN_FILE, token.as_bytes())
        .context("writing the broker's token file")?;
    Ok(token)
}

/// Keeps the broker running while the gateway runs.
struct Supervisor {
    bin: PathBuf,
    runtime: StateDir,
    socket: PathBuf,
    url: String,
    token: String,
    options: LocalOptions,
}

impl Supervisor {
    /// Watches the broker (found `running`, else started now), restarting it
    /// with backoff when it dies, until `shutdown`.
    async fn run(self, running: bool, shutdown: CancellationToken) {
        let client = match crate::broker::Broker::connect_lazy(&self.url, Some(&self.token)) {
            Ok(client) => client,
            Err(err) => return tracing::error!("cannot reach the local broker: {err:#}"),
        };
        let mut backoff = Duration::from_millis(250);
        let mut child = None;
        if !running {
            child = self.spawn_logged();
        }
        loop {
            let started = Instant::now();
            tokio::select! {
                () = self.until_dead(&client, child.as_mut()) => {}
                () = shutdown.cancelled() => return,
            }
            tracing::error!("the local broker is gone; restarting it");
            if started.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(250);
            }
            if sleep_or_shutdown(backoff, &shutdown).await {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
            child = self.spawn_logged();
        }
    }

    /// Resolves when the broker has exited (our child) or its socket refuses
    /// connections. Health checks keep it from stopping as idle.
    async fn until_dead(&self, client: &crate::broker::Broker, child: Option<&mut Child>) {
        let watch_child = async {
            match child {
                Some(child) => {
                    let status = child.wait().await;
                    tracing::warn!(?status, "the local broker exited");
                }
                None => std::future::pending().await,
            }
        };
        let probe = async {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if client.ready().await.is_err()
                    && tokio::net::UnixStream::connect(&self.socket).await.is_err()
                {
                    return;
                }
            }
        };
        tokio::select! {
            () = watch_child => {}
            () = probe => {}
        }
    }

    fn spawn_logged(&self) -> Option<Child> {
        self.spawn()
            .inspect_err(|err| tracing::error!("could not start the local broker: {err:#}"))
            .ok()
    }

    /// Starts the broker in its own process group, records its process id
    /// and egress proxy.
    fn spawn(&self) -> anyhow::Result<Child> {
        let log = self.open_log()?;
        let mut command = Command::new(&self.bin);
        for name in WITHHELD_ENV {
            command.env_remove(name);
        }
        command
            .env("BROKER_LISTEN", &self.url)
            .env("BROKER_TOKEN", &self.token)
            .env(
                "BROKER_IDLE_EXIT_SECS",
                self.options.idle_exit_secs.to_string(),
            )
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        if let Some(proxy) = &self.options.egress_proxy_url {
            command.env("EGRESS_PROXY_URL", proxy);
        }
        let egress = self.options.egress_proxy_url.as_deref().unwrap_or("");
        self.runtime.replace(EGRESS_FILE, egress.as_bytes())?;
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        let pid = child.id().unwrap_or_default();
        self.runtime.replace(PID_FILE, pid.to_string().as_bytes())?;
        tracing::info!(bin = %self.bin.display(), pid, "started the local broker");
        Ok(child)
    }

    /// `broker.log` (0600, appended), set aside first when it grew long.
    fn open_log(&self) -> anyhow::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.runtime.path().join(LOG_FILE);
        if std::fs::metadata(&path).is_ok_and(|meta| meta.len() > LOG_ROTATE_BYTES) {
            let _ = std::fs::rename(&path, path.with_extension("log.old"));
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }
}

/// Sleeps; `true` when shutdown came first.
async fn sleep_or_shutdown(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = shutdown.cancelled() => true,
    }
}

/// Time a stopped gateway or broker gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// `dispatch-gateway stop`: stops the gateway supervising the local broker
/// of `state_dir` (SIGTERM), then the broker, which ends every session.
/// Returns what it stopped, for the user.
pub async fn stop(state_dir: &Path) -> anyhow::Result<String> {
    let runtime = state_dir.join(RUNTIME_DIR);
    if !runtime.is_dir() {
        return Ok(format!("no local broker in {}", state_dir.display()));
    }
    let mut report = Vec::new();
    let _lock = stop_gateway(&runtime, &mut report).await?;
    stop_broker(&runtime, &mut report).await?;
    let _ = std::fs::remove_file(runtime.join(TOKEN_FILE));
    let _ = std::fs::remove_file(runtime.join(PID_FILE));
    if report.is_empty() {
        report.push("nothing was running".to_string());
    }
    Ok(report.join("\n"))
}

/// Ends the supervising gateway, if one runs, and returns its lock so no
/// gateway restarts the broker meanwhile.
async fn stop_gateway(runtime: &Path, report: &mut Vec<String>) -> anyhow::Result<Flock<File>> {
    let path = runtime.join(LOCK_FILE);
    let holder = match try_lock(&path)? {
        Ok(lock) => return Ok(lock),
        Err(holder) => holder,
    };
    let pid = holder
        .parse::<i32>()
        .ok()
        .filter(|pid| *pid > 0)
        .with_context(|| format!("{} names no process ({holder:?})", path.display()))?;
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(err) => return Err(err).context(format!("stopping the gateway (pid {pid})")),
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        if let Ok(lock) = try_lock(&path)? {
            report.push(format!("stopped dispatch-gateway (pid {pid})"));
            return Ok(lock);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("the gateway (pid {pid}) did not stop within {STOP_GRACE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM to the broker named by the pid file when it is alive and is a
/// `dispatch-broker`, SIGKILL after [`STOP_GRACE`].
async fn stop_broker(runtime: &Path, report: &mut Vec<String>) -> anyhow::Result<()> {
    let Some(pid) = std::fs::read_to_string(runtime.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 0 && is_broker(*pid))
    else {
        return Ok(());
    };
    let pid = Pid::from_raw(pid);
    kill(pid, Signal::SIGTERM).with_context(|| format!("stopping the broker (pid {pid})"))?;
    let deadline = Instant::now() + STOP_GRACE;
    while is_broker(pid.as_raw()) {
        if Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            report.push(format!(
                "killed dispatch-broker (pid {pid}) after {STOP_GRACE:?}"
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.push(format!(
        "stopped dispatch-broker (pid {pid}) and its sessions"
    ));
    Ok(())
}

/// Whether `pid` is a live (not zombie) `dispatch-broker` process.
pub fn is_broker(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((name, rest)) = stat
        .split_once(" (")
        .and_then(|(_, rest)| rest.rsplit_once(')'))
    else {
        return false;
    };
    name == "dispatch-broker" && !rest.trim_start().starts_with('Z')
}
