//! How a session ends: its leader is reaped (on SIGCHLD, through the
//! registry), what it left behind is killed so the PTY closes, and once
//! the reader has published the last output the exit is recorded, every
//! viewer told, and the screen frozen to its final replay.

use std::time::{Duration, Instant};

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;

use super::{ExitInfo, Session};
use crate::sync::lock;

/// How long the leader may outlive its terminal before it is killed.
const LEADER_AFTER_CLOSE: Duration = Duration::from_secs(2);
/// How often the reader looks for the leader's exit after the terminal
/// closed.
const LEADER_POLL: Duration = Duration::from_millis(5);
/// How long [`Session::end`] waits, after the kill, for the session to be
/// recorded as ended.
pub const END_WAIT: Duration = Duration::from_secs(10);

impl Session {
    pub fn is_running(&self) -> bool {
        !*self.ended.borrow()
    }

    /// Resolves once the session has ended.
    pub async fn wait_ended(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// How the session ended, once it has.
    pub fn exit(&self) -> Option<ExitInfo> {
        self.locks.state().exit.clone()
    }

    pub fn ended_at_ms(&self) -> i64 {
        self.locks.state().ended_at_ms
    }

    /// Kills the session's whole process tree; the reader then ends it.
    pub fn terminate(&self) {
        if self.is_running() {
            self.pty.kill_all();
        }
    }

    /// Sends SIGHUP to every process of the session, as a closing terminal
    /// would (programs may save their work and exit).
    pub fn hang_up(&self) {
        if self.is_running() {
            self.pty.hang_up();
        }
    }

    /// Ends the session and waits, for at most [`END_WAIT`] after the kill,
    /// until it is recorded as ended. With a `grace` period the session is
    /// hung up first and killed only if it is still running after it.
    pub async fn end(&self, grace: Option<Duration>) {
        if let Some(grace) = grace {
            self.hang_up();
            if tokio::time::timeout(grace, self.wait_ended()).await.is_ok() {
                return;
            }
        }
        self.terminate();
        let _ = tokio::time::timeout(END_WAIT, self.wait_ended()).await;
    }

    /// Reaps the session leader if it exited; then kills what it left
    /// behind so the PTY closes. Returns whether the leader has exited.
    pub fn poll_leader(&self) -> bool {
        let mut exit = lock(&self.leader_exit);
        if exit.is_some() {
            return true;
        }
        match self.pty.try_wait() {
            Some(status) => {
                tracing::debug!(session = %self.info.id, ?status, "session leader exited");
                *exit = Some(status);
                drop(exit);
                self.pty.kill_all();
                self.pty.wake();
                true
            }
            None => false,
        }
    }

    pub(super) fn leader_exited(&self) -> bool {
        lock(&self.leader_exit).is_some()
    }

    /// The leader's exit status, killing it if it lingers after its
    /// terminal closed.
    pub(super) fn await_leader(&self) -> ExitInfo {
        let started = Instant::now();
        let mut killed = false;
        loop {
            if self.poll_leader() {
                let exit = lock(&self.leader_exit);
                return exit.clone().unwrap_or(ExitInfo::Signal("SIGKILL".into()));
            }
            if !killed && started.elapsed() > LEADER_AFTER_CLOSE {
                self.pty.kill_all();
                killed = true;
            }
            std::thread::sleep(LEADER_POLL);
        }
    }

    /// Records the exit, closes every viewer's outbox with it and freezes
    /// the screen.
    pub(super) fn finish(&self, exit: ExitInfo) {
        self.pty.kill_all();
        let mut state = self.locks.state();
        tracing::info!(session = %self.info.id, ?exit, "session ended");
        self.metrics.session_ended();
        state.exit = Some(exit.clone());
        state.ended_at_ms = now_ms();
        state.caught_up_screen().freeze();
        for viewer in &mut state.viewers {
            viewer.close_with(exit_proto(&exit));
            viewer.wake.notify_one();
        }
        self.announce(&mut state, pb::session_event::Kind::Ended);
        drop(state);
        self.ended.send_replace(true);
    }
}

/// The contract's form of an exit status.
pub fn exit_proto(exit: &ExitInfo) -> pb::ExitStatus {
    match exit {
        ExitInfo::Code(code) => pb::ExitStatus {
            code: Some(*code),
            signal: String::new(),
        },
        ExitInfo::Signal(signal) => pb::ExitStatus {
            code: None,
            signal: signal.clone(),
        },
    }
}
