//! Spawning a session's program on a PTY, its environment, and killing its
//! whole process tree.
//!
//! The child runs as the leader of a new session (setsid) with the PTY as
//! its controlling terminal. Its environment is built from an allowlist so
//! that no secret of the broker (its token, the gateway's key) reaches it.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::io::unix::AsyncFd;

use crate::error::SessionError;
use crate::procfs;

/// Variables always copied from the broker's environment when set.
const ALLOWED_ENV: &[&str] = &["COLORTERM", "LANG", "HOME", "PATH", "USER", "SHELL"];

/// Defaults a session gets unless the broker's environment sets them; a
/// user's own shell configuration, read after, still wins. Bash shows only
/// the last two directories of a long working directory in the prompt, so a
/// prompt in a session's folder fits a phone's width far better.
const SESSION_DEFAULTS: &[(&str, &str)] = &[("PROMPT_DIRTRIM", "2")];

/// What to run in a session.
#[derive(Debug, Clone)]
pub struct Program {
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

/// Builds the child's environment from the allowlist and `passthrough`,
/// the session defaults, then `extra` (the broker's own settings for the session, such as its
/// egress proxy), which wins over a passed-through variable of the same name.
pub fn session_env(
    session_id: &str,
    shell: &Path,
    passthrough: &[String],
    extra: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut env = vec![("TERM".to_owned(), "xterm-256color".to_owned())];
    for name in ALLOWED_ENV
        .iter()
        .copied()
        .chain(passthrough.iter().map(String::as_str))
    {
        let taken = |k: &String| k == name;
        if name.is_empty()
            || is_broker_secret(name)
            || env.iter().any(|(k, _)| taken(k))
            || extra.iter().any(|(k, _)| taken(k))
        {
            continue;
        }
        let value = match (name, std::env::var(name)) {
            (_, Ok(value)) => value,
            ("SHELL", Err(_)) => shell.display().to_string(),
            ("COLORTERM", Err(_)) => "truecolor".to_owned(),
            _ => continue,
        };
        env.push((name.to_owned(), value));
    }
    for (name, default) in SESSION_DEFAULTS {
        let taken = |k: &String| k == name;
        if !env.iter().any(|(k, _)| taken(k)) && !extra.iter().any(|(k, _)| taken(k)) {
            let value = std::env::var(name).unwrap_or_else(|_| (*default).to_owned());
            env.push(((*name).to_owned(), value));
        }
    }
    env.extend(extra);
    env.push(("DISPATCH_SESSION_ID".to_owned(), session_id.to_owned()));
    env
}

/// The environment entry that marks a session's processes (empty when
/// `env` has none).
fn session_marker(env: &[(String, String)]) -> Vec<u8> {
    env.iter()
        .find(|(name, _)| name == "DISPATCH_SESSION_ID")
        .map(|(name, value)| format!("{name}={value}").into_bytes())
        .unwrap_or_default()
}

/// Names that are never passed through, even when asked to.
fn is_broker_secret(name: &str) -> bool {
    matches!(name, "BROKER_TOKEN" | "TERMINAL_KEY" | "BROKER_ADMIN_TOKEN")
}

/// The user's login shell, or `/bin/bash`.
pub fn login_shell() -> PathBuf {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.shell)
        .filter(|shell| shell.is_file())
        .unwrap_or_else(|| PathBuf::from("/bin/bash"))
}

/// Finds `program` in the colon-separated `path`.
pub fn find_in_path(program: &str, path: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path?
        .split(':')
        .filter(|dir| !dir.is_empty())
        .find_map(|dir| {
            let candidate = Path::new(dir).join(program);
            let meta = std::fs::metadata(&candidate).ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
        })
}

/// A running child on a PTY.
pub struct Pty {
    master: Mutex<Box<dyn MasterPty + Send>>,
    /// Non-blocking duplicate of the master side: polled and read by the
    /// session's reader thread, written asynchronously.
    io: AsyncFd<OwnedFd>,
    /// Interrupts the reader thread's wait (see [`Pty::wait`]).
    wake: EventFd,
    pid: Pid,
    /// The child's `DISPATCH_SESSION_ID=...` environment entry, which
    /// marks every process started from the session.
    marker: Vec<u8>,
    /// The terminal's device (`/dev/pts/N`).
    tty: Option<PathBuf>,
}

/// Why [`Pty::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    Output,
    Woken,
    Timeout,
}

impl Pty {
    /// Starts `program` on a new PTY of the given size.
    pub fn spawn(program: &Program, cols: u16, rows: u16) -> Result<Self, SessionError> {
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| SessionError::Spawn(format!("eventfd: {e}")))?;
        let pair = native_pty_system()
            .openpty(pty_size(cols, rows))
            .map_err(|e| SessionError::Spawn(format!("openpty: {e}")))?;
        let mut cmd = CommandBuilder::from_argv(program.argv.clone());
        cmd.env_clear();
        for (key, value) in &program.env {
            cmd.env(key, value);
        }
        cmd.cwd(&program.cwd);
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| SessionError::Spawn(e.to_string()))?;
        drop(pair.slave);
        let pid = child
            .process_id()
            .ok_or_else(|| SessionError::Spawn("child has no pid".into()))?;
        // The child is reaped with waitpid on its pid (see `try_wait`).
        drop(child);
        let io = nonblocking_dup(pair.master.as_ref())?;
        let tty = pair.master.tty_name();
        Ok(Self {
            master: Mutex::new(pair.master),
            io: register(io)?,
            wake,
            pid: Pid::from_raw(pid as i32),
            marker: session_marker(&program.env),
            tty,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = crate::sync::lock(&self.master).resize(pty_size(cols, rows));
    }

    /// Blocks the calling thread until the PTY has output or has closed
    /// (only when `output` is set), [`Pty::wake`] is called, or `timeout`
    /// (`None`: no limit) passes.
    pub fn wait(&self, output: bool, timeout: Option<Duration>) -> std::io::Result<Ready> {
        let timeout = timeout.map_or(PollTimeout::NONE, |t| {
            PollTimeout::from(u16::try_from(t.as_millis()).unwrap_or(u16::MAX))
        });
        let pty_events = if output {
            PollFlags::POLLIN
        } else {
            PollFlags::empty()
        };
        let mut fds = [
            PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.io.get_ref().as_fd(), pty_events),
        ];
        loop {
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(Ready::Timeout),
                Ok(_) if fds[0].any().unwrap_or(false) => {
                    // Clears the count; several wakes make one.
                    let _ = self.wake.read();
                    return Ok(Ready::Woken);
                }
                Ok(_) if output => return Ok(Ready::Output),
                Ok(_) => return Ok(Ready::Timeout),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Interrupts a [`Pty::wait`] (now or the next one).
    pub fn wake(&self) {
        let _ = self.wake.write(1);
    }

    /// Whether output is ready to read right now.
    pub fn has_output(&self) -> bool {
        let mut fds = [PollFd::new(self.io.get_ref().as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|ready| ready > 0)
    }

    /// Reads output if some is available right now (`None`: nothing yet).
    pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        match read_fd(self.io.get_ref(), buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes all of `data` to the PTY (the child's input).
    pub async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.io.writable().await?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Reaps the session leader if it exited.
    pub fn try_wait(&self) -> Option<ExitInfo> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Some(ExitInfo::Code(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                Some(ExitInfo::Signal(signal.as_str().to_owned()))
            }
            Ok(_) => None,
            // ECHILD: already reaped elsewhere; report it as killed.
            Err(nix::errno::Errno::ECHILD) => Some(ExitInfo::Signal("SIGKILL".into())),
            Err(_) => None,
        }
    }

    /// Kills every process of the session (the leader, its process group
    /// and any job it moved to another group), so nothing survives it.
    pub fn kill_all(&self) {
        kill_session(self.pid, &self.marker);
    }

    /// Sends SIGHUP to every process of the session (its process group and
    /// every other member of the session), as a closing terminal would.
    pub fn hang_up(&self) {
        let _ = nix::sys::signal::killpg(self.pid, Signal::SIGHUP);
        for pid in procfs::session_members(self.pid) {
            let _ = kill(pid, Signal::SIGHUP);
        }
    }

    /// Kills every process that holds the terminal open (slower than
    /// [`Pty::kill_all`]: it looks through every process's descriptors).
    pub fn kill_holders(&self) {
        let Some(tty) = &self.tty else { return };
        for pid in procfs::processes(|pid, _| procfs::holds(pid, tty)) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// How a session's program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitInfo {
    Code(i32),
    Signal(String),
}

fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    match nix::unistd::read(fd, buf) {
        Ok(n) => Ok(n),
        // Linux reports EIO on the master once every slave is closed.
        Err(nix::errno::Errno::EIO) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Registers the PTY descriptor with the Tokio reactor, for writes only:
/// output is read by the session's reader thread, so the reactor is not
/// woken by it.
#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` stays open and keeps returning the same
    // descriptor until the `AsyncFd` owning it is dropped.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::WRITABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

fn nonblocking_dup(master: &dyn MasterPty) -> Result<OwnedFd, SessionError> {
    let raw = master
        .as_raw_fd()
        .ok_or_else(|| SessionError::Spawn("PTY master has no file descriptor".into()))?;
    // SAFETY: `raw` belongs to `master`, which outlives this borrow; the
    // descriptor is immediately duplicated into an owned one.
    #[allow(unsafe_code)]
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let owned = borrowed.try_clone_to_owned()?;
    let flags = fcntl(&owned, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(&owned, FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
    debug_assert!(owned.as_raw_fd() >= 0);
    Ok(owned)
}

/// SIGKILLs every process of a session until none is left: those whose
/// session id is `leader` (its process group and any job moved to another
/// group), and those started from it that left it (`setsid`) but still carry
/// its `marker` (its `DISPATCH_SESSION_ID=...` entry) in their environment.
pub fn kill_session(leader: Pid, marker: &[u8]) {
    let _ = nix::sys::signal::killpg(leader, Signal::SIGKILL);
    for _ in 0..5 {
        let members = procfs::processes(|pid, session| {
            session == leader.as_raw() as u32
                || (!marker.is_empty() && procfs::carries(pid, marker))
        });
        if members.is_empty() {
            return;
        }
        for pid in members {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_allowlist_only() {
        let env = session_env(
            "abc",
            Path::new("/bin/sh"),
            &["BROKER_TOKEN".into(), "NOPE_UNSET_VAR".into()],
            Vec::new(),
        );
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"TERM"));
        assert!(names.contains(&"PROMPT_DIRTRIM"));
        assert!(names.contains(&"DISPATCH_SESSION_ID"));
        assert!(!names.contains(&"BROKER_TOKEN"));
        assert!(!names.contains(&"NOPE_UNSET_VAR"));
    }

    #[test]
    fn the_brokers_own_variables_win_over_passed_through_ones() {
        // PATH is always passed through; a PATH of the broker's replaces it.
        let own = vec![("PATH".to_owned(), "/own".to_owned())];
        let env = session_env("abc", Path::new("/bin/sh"), &["PATH".into()], own);
        let paths: Vec<&str> = env
            .iter()
            .filter(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(paths, ["/own"]);
    }

    #[test]
    fn finds_programs_in_path() {
        assert!(find_in_path("sh", Some("/nonexistent:/bin:/usr/bin")).is_some());
        assert!(find_in_path("definitely-not-a-program", Some("/bin")).is_none());
    }
}
