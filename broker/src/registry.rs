//! The session registry: creates sessions (directory, program, environment),
//! finds, lists and ends them, reaps exited children, drops ended sessions
//! after their retention, and broadcasts every change to watchers.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DefaultMode};
use crate::error::SessionError;
use crate::metrics::Metrics;
use crate::session::pty::{self, Program};
use crate::session::terminal::clamp_dimension;
use crate::session::{Limits, Observers, Session, SessionId, SessionInfo};

/// Longest session name accepted (one definition for broker, gateway and web UI).
pub const MAX_NAME_CHARS: usize = dispatch_proto::limits::MAX_SESSION_NAME_CHARS;
/// Most metadata entries per session, and the longest key and value.
pub const MAX_METADATA_ENTRIES: usize = 32;
pub const MAX_METADATA_KEY: usize = 128;
pub const MAX_METADATA_VALUE: usize = 4096;
/// Most `claude_args`, and the longest one.
pub const MAX_CLAUDE_ARGS: usize = 64;
pub const MAX_CLAUDE_ARG: usize = 4096;

/// Every session of the broker.
#[derive(Clone)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistry").finish_non_exhaustive()
    }
}

struct Inner {
    config: Arc<Config>,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    events: broadcast::Sender<pb::SessionEvent>,
    metrics: Metrics,
    shutdown: CancellationToken,
    shell: PathBuf,
    /// Set by the Admin service's drain: no new sessions.
    draining: AtomicBool,
}

impl SessionRegistry {
    /// Creates the registry and its background tasks (child reaper,
    /// retention sweeper), which stop with `shutdown`. Its sessions count
    /// into `metrics`.
    pub fn new(config: Arc<Config>, metrics: Metrics, shutdown: CancellationToken) -> Self {
        let registry = Self {
            inner: Arc::new(Inner {
                config,
                sessions: Mutex::new(HashMap::new()),
                events: broadcast::channel(256).0,
                metrics,
                shutdown,
                shell: pty::login_shell(),
                draining: AtomicBool::new(false),
            }),
        };
        tokio::spawn(registry.clone().reap_children());
        tokio::spawn(registry.clone().sweep_retention());
        registry
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        crate::sync::lock(&self.inner.sessions)
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut sessions: Vec<_> = self.sessions().values().cloned().collect();
        sessions.sort_by_key(|s| (s.info().created_at_ms, s.id()));
        sessions
    }

    /// Number of running sessions.
    pub fn running(&self) -> usize {
        self.sessions().values().filter(|s| s.is_running()).count()
    }

    /// Stops (`true`) or restarts the creation of sessions.
    pub fn set_draining(&self, draining: bool) {
        self.inner.draining.store(draining, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Finds a session by its id string.
    pub fn get(&self, id: &str) -> Result<Arc<Session>, SessionError> {
        let id: SessionId = id.parse()?;
        self.sessions()
            .get(&id)
            .cloned()
            .ok_or_else(|| SessionError::NotFound(id.to_string()))
    }

    /// Receives every change (created, updated, ended, removed).
    pub fn subscribe(&self) -> broadcast::Receiver<pb::SessionEvent> {
        self.inner.events.subscribe()
    }

    /// Starts a session.
    pub fn create(&self, request: pb::CreateSessionRequest) -> Result<Arc<Session>, SessionError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(SessionError::ShuttingDown);
        }
        if self.is_draining() {
            return Err(SessionError::Draining);
        }
        validate(&request)?;
        let config = &self.inner.config;
        if self.running() >= config.max_sessions {
            return Err(SessionError::TooManySessions(config.max_sessions));
        }
        let id = SessionId::new();
        let cols = clamp_dimension(request.cols, 80);
        let rows = clamp_dimension(request.rows, 24);
        let cwd = self.session_dir(id, &request.cwd)?;
        let env = pty::session_env(
            &id.to_string(),
            &self.inner.shell,
            &config.session_env_passthrough,
            crate::egress::session_env(
                config.egress_proxy_url.as_ref(),
                &config.token.0,
                &id.to_string(),
            ),
        );
        let requested_mode = match pb::SessionMode::try_from(request.mode) {
            Ok(pb::SessionMode::Unspecified) => match config.pty_mode {
                DefaultMode::Shell => pb::SessionMode::Shell,
                DefaultMode::Claude => pb::SessionMode::Claude,
            },
            Ok(mode) => mode,
            Err(_) => {
                return Err(SessionError::InvalidArgument(format!(
                    "unknown mode {}",
                    request.mode
                )));
            }
        };
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        let (mode, argv, fallback_reason, banner) = match requested_mode {
            pb::SessionMode::Claude => match pty::find_in_path("claude", path) {
                Some(claude) => {
                    let mut argv = vec![claude.into_os_string()];
                    argv.extend(request.claude_args.iter().map(Into::into));
                    match crate::claude_hook::settings_args(&config.pty_root) {
                        Ok(args) => argv.extend(args),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot write the Claude Code notification hook")
                        }
                    }
                    (pb::SessionMode::Claude, argv, String::new(), None)
                }
                None => {
                    let reason =
                        "claude is not installed on this server (not found in PATH)".to_owned();
                    let banner = format!("dispatch: {reason}; running a shell instead.\r\n");
                    (
                        pb::SessionMode::Shell,
                        self.shell_argv(),
                        reason,
                        Some(banner),
                    )
                }
            },
            _ => (
                pb::SessionMode::Shell,
                self.shell_argv(),
                String::new(),
                None,
            ),
        };
        let info = SessionInfo {
            id,
            mode,
            requested_mode,
            fallback_reason,
            cwd: cwd.clone(),
            metadata: request.metadata.clone(),
            created_at_ms: now_ms(),
        };
        let program = Program { argv, cwd, env };
        let limits = Limits {
            window: config.flow_window_bytes as u64,
            window_time: config.flow_window_time(),
            stall: config.flow_stall(),
            scrollback_bytes: config.scrollback_bytes,
            notify_min_interval: std::time::Duration::from_secs(config.notify_min_interval_secs),
        };
        let session = Session::start(
            info,
            request.name.clone(),
            &program,
            (cols, rows),
            limits,
            Observers {
                events: self.inner.events.clone(),
                metrics: self.inner.metrics.clone(),
            },
            banner,
        )?;
        tracing::info!(session = %id, mode = ?mode, pid = session.stats().pid, "session created");
        self.sessions().insert(id, Arc::clone(&session));
        self.inner.metrics.session_created();
        let _ = self.inner.events.send(pb::SessionEvent {
            kind: pb::session_event::Kind::Created as i32,
            sessions: vec![session.to_proto()],
        });
        Ok(session)
    }

    fn shell_argv(&self) -> Vec<std::ffi::OsString> {
        vec![self.inner.shell.clone().into_os_string()]
    }

    /// The working directory: the requested one (which must exist), or a new
    /// 0700 directory `PTY_ROOT/<id>`.
    fn session_dir(&self, id: SessionId, requested: &str) -> Result<PathBuf, SessionError> {
        if !requested.is_empty() {
            let path = Path::new(requested);
            if !path.is_absolute() || !path.is_dir() {
                return Err(SessionError::InvalidArgument(format!(
                    "cwd {} is not an absolute path to an existing directory",
                    crate::error::quote(requested)
                )));
            }
            return Ok(path.to_path_buf());
        }
        // Named by the id's first 8 characters (as the web UI names a
        // session), so that a prompt showing the directory fits a phone;
        // the whole id if another session took that name.
        let id = id.to_string();
        let short = self.inner.config.pty_root.join(&id[..8]);
        let create = |dir: &Path| std::fs::DirBuilder::new().mode(0o700).create(dir);
        let dir = match create(&short) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let full = self.inner.config.pty_root.join(&id);
                create(&full).map(|()| full)
            }
            created => created.map(|()| short),
        };
        dir.map_err(|e| SessionError::Spawn(format!("cannot create the session directory: {e}")))
    }

    /// Ends a session (killing its process tree) and waits until it is
    /// recorded as ended.
    pub async fn end(&self, id: &str) -> Result<Arc<Session>, SessionError> {
        let session = self.get(id)?;
        session.end(None).await;
        Ok(session)
    }

    /// Tells viewers, ends every session and waits for them (bounded).
    pub async fn shutdown(&self) {
        let sessions = self.list();
        for session in &sessions {
            session.notify_viewers("dispatch-broker is shutting down");
        }
        futures::future::join_all(sessions.iter().map(|s| s.end(None))).await;
    }

    /// Reaps session leaders on SIGCHLD (and periodically, as a fallback).
    async fn reap_children(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigchld = signal(SignalKind::child()).ok();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                _ = async {
                    match sigchld.as_mut() {
                        Some(s) => { s.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                _ = tick.tick() => {}
            }
            for session in self.list() {
                if session.is_running() {
                    session.poll_leader();
                }
            }
        }
    }

    /// Drops ended sessions once their retention has passed.
    async fn sweep_retention(self) {
        let retention = self.inner.config.retention();
        let period = (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut tick = tokio::time::interval(period);
        let mut running_before = 0;
        loop {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let running = self.list().iter().filter(|s| s.is_running()).count();
            let some_ended = running < running_before;
            running_before = running;
            let cutoff = now_ms() - retention.as_millis() as i64;
            let expired: Vec<Arc<Session>> = {
                let mut sessions = self.sessions();
                let ids: Vec<SessionId> = sessions
                    .values()
                    .filter(|s| !s.is_running() && s.ended_at_ms() <= cutoff)
                    .map(|s| s.id())
                    .collect();
                ids.iter().filter_map(|id| sessions.remove(id)).collect()
            };
            let some_dropped = !expired.is_empty();
            for session in expired {
                tracing::debug!(session = %session.id(), "ended session dropped after retention");
                let _ = self.inner.events.send(pb::SessionEvent {
                    kind: pb::session_event::Kind::Removed as i32,
                    sessions: vec![session.to_proto()],
                });
            }
            if some_ended || some_dropped {
                release_freed_memory();
            }
        }
    }
}

/// Hands memory freed by ended and dropped sessions back to the system
/// (the allocator otherwise keeps it for reuse, and the broker's resident
/// size would stay at its peak).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reorganises glibc's own free lists.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

fn validate(request: &pb::CreateSessionRequest) -> Result<(), SessionError> {
    let invalid = |msg: String| Err(SessionError::InvalidArgument(msg));
    validate_name(&request.name)?;
    if request.metadata.len() > MAX_METADATA_ENTRIES {
        return invalid(format!("more than {MAX_METADATA_ENTRIES} metadata entries"));
    }
    if request
        .metadata
        .iter()
        .any(|(k, v)| k.is_empty() || k.len() > MAX_METADATA_KEY || v.len() > MAX_METADATA_VALUE)
    {
        return invalid(format!(
            "metadata keys must be 1..={MAX_METADATA_KEY} bytes and values at most {MAX_METADATA_VALUE}"
        ));
    }
    if request.claude_args.len() > MAX_CLAUDE_ARGS
        || request
            .claude_args
            .iter()
            .any(|a| a.len() > MAX_CLAUDE_ARG || a.contains('\0'))
    {
        return invalid(format!(
            "claude_args: at most {MAX_CLAUDE_ARGS} arguments of at most {MAX_CLAUDE_ARG} bytes, without NUL"
        ));
    }
    Ok(())
}

/// Validates a session name (at creation and rename): at most
/// [`MAX_NAME_CHARS`] characters, none of them a control character or an
/// invisible formatting one (see [`is_hidden_char`]). Such names are
/// refused, not silently changed, so that what a client asked for is what
/// every viewer sees.
pub fn validate_name(name: &str) -> Result<(), SessionError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(SessionError::InvalidArgument(format!(
            "name longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if let Some(c) = name.chars().find(|&c| is_hidden_char(c)) {
        let kind = if c.is_control() {
            "a control character"
        } else {
            "an invisible or bidirectional formatting character"
        };
        return Err(SessionError::InvalidArgument(format!(
            "name contains {kind} (U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Characters that never belong in a name shown to people: control
/// characters (C0, DEL, C1: escape sequences, line breaks) and the invisible
/// ones of [`dispatch_proto::text::is_invisible`].
pub fn is_hidden_char(c: char) -> bool {
    c.is_control() || dispatch_proto::text::is_invisible(c)
}

/// Creates `PTY_ROOT` (mode 0700) if it is missing.
pub fn prepare_pty_root(root: &Path) -> std::io::Result<()> {
    if !root.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
