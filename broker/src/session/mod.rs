//! One PTY session: its child, terminal state, attached viewers and the
//! reader thread that paces the PTY to them (flow control).
//!
//! Flow control: every byte read from the PTY gets a stream offset. Each
//! viewer has an outbox of output not yet handed to its stream, bounded by
//! `window + 2 * READ_CHUNK` bytes; when it would overflow, the outbox is
//! dropped and the viewer is resynchronised with a fresh replay from the
//! screen state. Viewers with flow control acknowledge the offsets they have
//! consumed; the reader stops reading the PTY while every acknowledging viewer
//! is a full window behind. A viewer's window follows its delivery rate
//! (what it consumes in `window_time`; see `outbox`), so a slow link holds
//! little in flight and an interrupt shows promptly; with a zero
//! `window_time` every window is the fixed `window`.
//!
//! Where each part lives:
//! - `id`: session and viewer ids;
//! - `outbox`: a viewer's outbox and the messages taken from it;
//! - `viewers`: what viewers do (attach, next message, ack, resize, input);
//! - `handover`: moving a viewer to a new attach stream;
//! - `reader`: the reader thread, publishing and pacing;
//! - `screen`: the lazy screen with its inbox, and the lock order;
//! - `state`: the mutable state behind the session's lock;
//! - `lifecycle`: reaping the leader and ending the session;
//! - `attention`: the bell and notification sequences found in the output,
//!   and the session's attention;
//! - [`pty`]: the child on its PTY; [`terminal`]: the screen's parser and
//!   scrollback.

pub mod attention;
mod handover;
mod id;
mod lifecycle;
mod outbox;
pub mod pty;
mod reader;
mod reflow;
mod screen;
mod state;
pub mod terminal;
mod viewers;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;
use tokio::sync::{Mutex as AsyncMutex, broadcast, watch};

use crate::error::SessionError;
use crate::metrics::Metrics;
pub use handover::{HANDOVER_TIMEOUT, StreamViewer};
pub use id::{SessionId, ViewerId};
pub use lifecycle::exit_proto;
pub use outbox::{MAX_OUTPUT_CHUNK, Outgoing};
pub use pty::ExitInfo;
use pty::Pty;
pub use reader::READ_CHUNK;
use screen::Locks;
use state::State;
use terminal::Terminal;

/// Flow-control and memory limits of a session.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest window (the fixed one when `window_time` is zero).
    pub window: u64,
    /// How much of its delivery rate a viewer may have in flight.
    pub window_time: Duration,
    pub stall: Duration,
    pub scrollback_bytes: usize,
    /// Least time between two signals that set the session's attention.
    pub notify_min_interval: Duration,
}

impl Limits {
    /// Output a viewer may have queued before it is resynchronised.
    fn outbox_limit(&self) -> usize {
        self.window as usize + 2 * READ_CHUNK
    }
}

/// The immutable description of a session.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub id: SessionId,
    pub mode: pb::SessionMode,
    pub requested_mode: pb::SessionMode,
    pub fallback_reason: String,
    pub cwd: PathBuf,
    pub metadata: std::collections::HashMap<String, String>,
    pub created_at_ms: i64,
}

/// Live figures of a session (for listings and administration).
#[derive(Clone, Debug)]
pub struct SessionStats {
    pub id: SessionId,
    pub name: String,
    pub pid: u32,
    pub running: bool,
    pub viewers: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub idle: Duration,
    pub cols: u16,
    pub rows: u16,
    pub scrollback_bytes: usize,
}

/// Where session changes are announced (the registry's event stream).
pub type EventSender = broadcast::Sender<pb::SessionEvent>;

/// Who hears of a session from outside: the registry's event stream and the
/// broker's counters.
#[derive(Clone, Debug)]
pub struct Observers {
    pub events: EventSender,
    pub metrics: Metrics,
}

/// A running or ended session.
pub struct Session {
    info: SessionInfo,
    pty: Pty,
    limits: Limits,
    /// The state and the screen, locked in that order.
    locks: Locks,
    leader_exit: std::sync::Mutex<Option<ExitInfo>>,
    /// Whether the reader thread waits for viewers to acknowledge (and so
    /// must be woken when they do).
    reader_paced: AtomicBool,
    input: AsyncMutex<()>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    ended: watch::Sender<bool>,
    events: EventSender,
    metrics: Metrics,
    /// Finds bells and notifications in the output (used by the reader).
    scanner: std::sync::Mutex<attention::Scanner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.info.id)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Spawns `program` and starts reading its output. `banner` is shown as
    /// the session's first lines.
    pub fn start(
        info: SessionInfo,
        name: String,
        program: &pty::Program,
        (cols, rows): (u16, u16),
        limits: Limits,
        Observers { events, metrics }: Observers,
        banner: Option<String>,
    ) -> Result<Arc<Self>, SessionError> {
        let pty = Pty::spawn(program, cols, rows)?;
        let session = Arc::new(Self {
            info,
            pty,
            limits,
            locks: Locks::new(
                State::new(name, (cols, rows), now_ms()),
                Terminal::new(cols, rows, limits.scrollback_bytes),
            ),
            leader_exit: std::sync::Mutex::new(None),
            reader_paced: AtomicBool::new(false),
            input: AsyncMutex::new(()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            ended: watch::channel(false).0,
            events,
            metrics,
            scanner: Default::default(),
        });
        if let Some(banner) = banner {
            session.publish(banner.as_bytes());
            session.locks.screen().catch_up();
        }
        session.spawn_reader()?;
        Ok(session)
    }

    pub fn id(&self) -> SessionId {
        self.info.id
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Live figures.
    pub fn stats(&self) -> SessionStats {
        let scrollback_bytes = self.locks.screen().scrollback_bytes();
        let state = self.locks.state();
        SessionStats {
            id: self.info.id,
            name: state.name.clone(),
            pid: if state.exit.is_none() {
                self.pty.pid()
            } else {
                0
            },
            running: state.exit.is_none(),
            viewers: state.viewers.len(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            idle: state.last_active.elapsed(),
            cols: state.cols,
            rows: state.rows,
            scrollback_bytes,
        }
    }

    /// The session as the gRPC contract describes it.
    pub fn to_proto(&self) -> pb::Session {
        let state = self.locks.state();
        self.proto_locked(&state)
    }

    fn proto_locked(&self, state: &State) -> pb::Session {
        let info = &self.info;
        pb::Session {
            id: info.id.to_string(),
            name: state.name.clone(),
            mode: info.mode as i32,
            requested_mode: info.requested_mode as i32,
            fallback_reason: info.fallback_reason.clone(),
            status: if state.exit.is_some() {
                pb::SessionStatus::Exited
            } else {
                pb::SessionStatus::Running
            } as i32,
            cols: u32::from(state.cols),
            rows: u32::from(state.rows),
            created_at_ms: info.created_at_ms,
            last_active_ms: state.last_active_ms,
            ended_at_ms: state.ended_at_ms,
            exit: state.exit.as_ref().map(exit_proto),
            metadata: info.metadata.clone(),
            viewers: state.viewers.len() as u32,
            cwd: info.cwd.display().to_string(),
            pid: if state.exit.is_some() {
                0
            } else {
                self.pty.pid()
            },
            attention: state.attention.current(),
        }
    }

    /// Announces a change to the registry's watchers and to every viewer.
    fn announce(&self, state: &mut State, kind: pb::session_event::Kind) {
        let session = self.proto_locked(state);
        for viewer in &mut state.viewers {
            viewer.push_event(pb::attach_response::Kind::Session(session.clone()));
        }
        let _ = self.events.send(pb::SessionEvent {
            kind: kind as i32,
            sessions: vec![session],
        });
    }

    pub fn rename(&self, name: String) -> pb::Session {
        let mut state = self.locks.state();
        state.name = name;
        self.announce(&mut state, pb::session_event::Kind::Updated);
        self.proto_locked(&state)
    }
}
