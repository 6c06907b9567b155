//! One PTY session: its child, terminal state, attached viewers and the
//! reader thread that paces the PTY to them (flow control).
//!
//! Flow control: every byte read from the PTY gets a stream offset. Each
//! viewer has an outbox of output not yet handed to its stream, bounded by
//! `window + 2 * READ_CHUNK` bytes; when it would overflow, the outbox is
//! dropped and the viewer is resynchronised with a fresh [`Replay`] from the
//! screen state. Viewers with flow control acknowledge the offsets they have
//! consumed; the reader stops reading the PTY while every acknowledging viewer
//! is a full window behind, so the child blocks on its writes. A viewer that
//! has not acknowledged for `flow_stall` stops pacing, and a session without
//! viewers never blocks.
//!
//! The PTY is read by the session's own thread, which blocks in the kernel
//! until output comes (as promptly as a plain read loop) and never parses: the kernel
//! buffers only a few KiB of a PTY's output, so any time the reader spends
//! elsewhere stalls the child. Output goes to the terminal's inbox, and the
//! screen state ([`Terminal`], behind its own lock) takes it in on a
//! blocking thread once enough has arrived, when output goes quiet, or
//! when a replay or resize needs the current screen.

pub mod pty;
pub mod terminal;

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dispatch_proto::v1 as pb;
use tokio::sync::{Notify, broadcast, watch};
use uuid::Uuid;

use crate::error::SessionError;
pub use pty::ExitInfo;
use pty::Pty;
use terminal::Terminal;

/// Bytes read from the PTY at once.
pub const READ_CHUNK: usize = 256 * 1024;
/// Size of the read buffer when output starts to flow.
const FIRST_READ_BUFFER: usize = 16 * 1024;
/// Largest `Output` message sent to a viewer.
pub const MAX_OUTPUT_CHUNK: usize = 256 * 1024;
/// Queued output is parsed once the PTY has been quiet this long.
const PARSE_WHEN_QUIET: Duration = Duration::from_millis(50);
/// Output in the terminal's inbox that starts taking it in, on a blocking
/// thread.
const INBOX_DRAIN: usize = 256 << 10;
/// Output in the inbox that the reader takes in itself, when the blocking
/// thread cannot keep up: with [`terminal::BACKLOG_MAX`], the bound of
/// unparsed output per session.
const INBOX_MAX: usize = 2 << 20;
/// A read at least this big means output streams in: more is kept with
/// it, for at most [`COALESCE_WAIT`], and published together (fewer,
/// bigger messages; fewer wake-ups of the viewers' streams).
const BULK_READ: usize = 2048;
/// How long a bulk read waits for more before it is published.
const COALESCE_WAIT: Duration = Duration::from_millis(2);
/// How long the PTY may stay open after the session leader exited and
/// everything of the session was killed before whatever still holds the
/// terminal is killed too and the session ends.
const PTY_LINGER: Duration = Duration::from_secs(2);
/// Stack of a session's reader thread.
const READER_STACK: usize = 256 << 10;
/// Pending metadata/notice events kept per viewer.
const MAX_VIEWER_EVENTS: usize = 64;

/// A session id (a UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SessionId {
    type Err = SessionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| SessionError::InvalidId(s.chars().take(64).collect()))
    }
}

/// Identifies one attachment of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViewerId(u64);

/// Flow-control and memory limits of a session.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub window: u64,
    pub stall: Duration,
    pub scrollback_bytes: usize,
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

/// What a viewer's stream should send next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built and consumed at once, never stored
pub enum Outgoing {
    Message(pb::attach_response::Kind),
    /// Nothing more will come: close the stream.
    Closed,
    /// Nothing to send now; wait for the viewer's wake-up.
    Idle,
}

struct Viewer {
    id: ViewerId,
    flow_control: bool,
    /// This viewer's own terminal size (applied when it is active).
    size: Option<(u16, u16)>,
    acked: u64,
    last_ack: Instant,
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// Stream offset just after the pending output.
    pending_end: u64,
    resync: bool,
    /// Events not sent yet, each with the stream offset it follows: output
    /// published before an event reaches the viewer before it.
    events: VecDeque<(u64, pb::attach_response::Kind)>,
    closed: bool,
    wake: Arc<Notify>,
}

struct State {
    name: String,
    offset: u64,
    cols: u16,
    rows: u16,
    viewers: Vec<Viewer>,
    next_viewer: u64,
    last_active: Instant,
    last_active_ms: i64,
    exit: Option<ExitInfo>,
    ended_at_ms: i64,
}

/// Where session changes are announced (the registry's event stream).
pub type EventSender = broadcast::Sender<pb::SessionEvent>;

/// A running or ended session.
pub struct Session {
    info: SessionInfo,
    pty: Pty,
    limits: Limits,
    state: Mutex<State>,
    /// The screen state; taken after `state` when both are held.
    terminal: Mutex<Terminal>,
    /// Output published but not handed to `terminal` yet; appended under
    /// `state`, so with `state` held it ends at `State::offset`.
    inbox: Mutex<Inbox>,
    /// Whether a blocking thread is taking the inbox in.
    draining: AtomicBool,
    leader_exit: Mutex<Option<ExitInfo>>,
    /// Whether the reader thread waits for viewers to acknowledge (and so
    /// must be woken when they do).
    reader_paced: AtomicBool,
    input: tokio::sync::Mutex<()>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    ended: watch::Sender<bool>,
    events: EventSender,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.info.id)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
        events: EventSender,
        banner: Option<String>,
    ) -> Result<Arc<Self>, SessionError> {
        let pty = Pty::spawn(program, cols, rows)?;
        let session = Arc::new(Self {
            info,
            pty,
            limits,
            state: Mutex::new(State {
                name,
                offset: 0,
                cols,
                rows,
                viewers: Vec::new(),
                next_viewer: 0,
                last_active: Instant::now(),
                last_active_ms: now_ms(),
                exit: None,
                ended_at_ms: 0,
            }),
            terminal: Mutex::new(Terminal::new(cols, rows, limits.scrollback_bytes)),
            inbox: Mutex::new(Inbox::default()),
            draining: AtomicBool::new(false),
            leader_exit: Mutex::new(None),
            reader_paced: AtomicBool::new(false),
            input: tokio::sync::Mutex::new(()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            ended: watch::channel(false).0,
            events,
        });
        if let Some(banner) = banner {
            session.publish(banner.as_bytes());
            session.terminal().catch_up();
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

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The screen state, with every published chunk handed to it. With
    /// the `state` lock held, it is the screen at `State::offset`.
    fn terminal(&self) -> MutexGuard<'_, Terminal> {
        let mut terminal = lock(&self.terminal);
        let inbox = std::mem::take(&mut *lock(&self.inbox));
        for chunk in inbox.chunks {
            terminal.push(chunk);
        }
        terminal
    }

    /// Whether output waits to be parsed (without waiting for the terminal:
    /// while another thread holds it, there is).
    fn has_unparsed_output(&self) -> bool {
        lock(&self.inbox).bytes > 0
            || self
                .terminal
                .try_lock()
                .map_or(true, |terminal| terminal.backlog() > 0)
    }

    /// Hands the inbox to the terminal on a blocking thread once enough
    /// output has arrived (at most one such thread per session).
    fn drain_inbox_soon(self: &Arc<Self>) {
        if lock(&self.inbox).bytes < INBOX_DRAIN || self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let session = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            drop(session.terminal());
            session.draining.store(false, Ordering::Release);
        });
    }

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
        self.lock().exit.clone()
    }

    pub fn ended_at_ms(&self) -> i64 {
        self.lock().ended_at_ms
    }

    /// Live figures.
    pub fn stats(&self) -> SessionStats {
        let scrollback_bytes = lock(&self.terminal).scrollback_bytes();
        let state = self.lock();
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
        let state = self.lock();
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
        let mut state = self.lock();
        state.name = name;
        self.announce(&mut state, pb::session_event::Kind::Updated);
        self.proto_locked(&state)
    }

    /// Adds a viewer; its first message will be a replay.
    pub fn attach(&self, flow_control: bool, size: Option<(u16, u16)>) -> (ViewerId, Arc<Notify>) {
        let mut state = self.lock();
        let id = ViewerId(state.next_viewer);
        state.next_viewer += 1;
        let wake = Arc::new(Notify::new());
        let mut viewer = Viewer {
            id,
            flow_control,
            size,
            acked: state.offset,
            last_ack: Instant::now(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            pending_end: state.offset,
            resync: true,
            events: VecDeque::new(),
            closed: false,
            wake: Arc::clone(&wake),
        };
        if let Some(exit) = &state.exit {
            let exit = pb::attach_response::Kind::Exit(exit_proto(exit));
            viewer.events.push_back((viewer.pending_end, exit));
            viewer.closed = true;
        }
        state.viewers.push(viewer);
        if let Some((cols, rows)) = size {
            self.apply_size(&mut state, cols, rows);
        }
        self.announce(&mut state, pb::session_event::Kind::Updated);
        wake.notify_one();
        (id, wake)
    }

    /// Removes a viewer.
    pub fn detach(&self, viewer: ViewerId) {
        let mut state = self.lock();
        let before = state.viewers.len();
        state.viewers.retain(|v| v.id != viewer);
        if state.viewers.len() != before {
            self.announce(&mut state, pb::session_event::Kind::Updated);
        }
        drop(state);
        self.wake_reader();
    }

    /// The next message for a viewer's stream.
    pub fn next_outgoing(&self, viewer: ViewerId) -> Outgoing {
        let mut state = self.lock();
        let offset = state.offset;
        let (cols, rows) = (state.cols, state.rows);
        let snapshot_needed = match state.viewers.iter().find(|v| v.id == viewer) {
            None => return Outgoing::Closed,
            Some(v) => v.resync,
        };
        if snapshot_needed {
            let snapshot = self.terminal().snapshot();
            let v = state.viewer_mut(viewer);
            v.resync = false;
            v.pending.clear();
            v.pending_bytes = 0;
            v.pending_end = offset;
            v.acked = offset;
            v.last_ack = Instant::now();
            return Outgoing::Message(pb::attach_response::Kind::Replay(pb::Replay {
                scrollback: snapshot.scrollback,
                screen: snapshot.screen,
                offset,
                cols: u32::from(cols),
                rows: u32::from(rows),
            }));
        }
        let v = state.viewer_mut(viewer);
        let next_event_at = v.events.front().map(|(at, _)| *at);
        let output_start = v.pending_end - v.pending_bytes as u64;
        if next_event_at.is_none_or(|at| at > output_start)
            && let Some(output) = v.take_output(next_event_at)
        {
            return Outgoing::Message(pb::attach_response::Kind::Output(output));
        }
        if let Some((_, event)) = v.events.pop_front() {
            return Outgoing::Message(event);
        }
        if v.closed {
            Outgoing::Closed
        } else {
            Outgoing::Idle
        }
    }

    /// Records that a viewer consumed output up to `offset`.
    pub fn ack(&self, viewer: ViewerId, offset: u64) {
        let mut state = self.lock();
        let current = state.offset;
        if let Some(v) = state.viewers.iter_mut().find(|v| v.id == viewer) {
            v.acked = v.acked.max(offset.min(current));
            v.last_ack = Instant::now();
        }
        drop(state);
        self.wake_reader();
    }

    /// Sets a viewer's own size and makes it the PTY's size.
    pub fn resize(&self, viewer: ViewerId, cols: u16, rows: u16) {
        let mut state = self.lock();
        if let Some(v) = state.viewers.iter_mut().find(|v| v.id == viewer) {
            v.size = Some((cols, rows));
        }
        self.apply_size(&mut state, cols, rows);
    }

    fn apply_size(&self, state: &mut State, cols: u16, rows: u16) {
        if (state.cols, state.rows) == (cols, rows) || state.exit.is_some() {
            return;
        }
        state.cols = cols;
        state.rows = rows;
        self.terminal().resize(cols, rows);
        self.pty.resize(cols, rows);
        self.announce(state, pb::session_event::Kind::Updated);
    }

    /// Writes a viewer's keystrokes to the PTY; the PTY takes that viewer's
    /// size (it is now the most recently active one).
    pub async fn input(&self, viewer: ViewerId, data: &[u8]) -> Result<(), SessionError> {
        {
            let mut state = self.lock();
            if state.exit.is_some() {
                return Err(SessionError::Ended(self.info.id.to_string()));
            }
            let size = state
                .viewers
                .iter()
                .find(|v| v.id == viewer)
                .and_then(|v| v.size);
            if let Some((cols, rows)) = size {
                self.apply_size(&mut state, cols, rows);
            }
            state.last_active = Instant::now();
            state.last_active_ms = now_ms();
        }
        let _serialised = self.input.lock().await;
        self.pty.write_all(data).await?;
        self.bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        crate::metrics::BYTES_IN.inc_by(data.len() as u64);
        Ok(())
    }

    /// Sends a notice line to every viewer.
    pub fn notify_viewers(&self, text: &str) {
        let mut state = self.lock();
        for viewer in &mut state.viewers {
            viewer.push_event(pb::attach_response::Kind::Notice(pb::Notice {
                text: text.to_owned(),
            }));
        }
    }

    /// Kills the session's whole process tree; the reader then ends it.
    pub fn terminate(&self) {
        if self.is_running() {
            self.pty.kill_all();
        }
    }

    /// Reaps the session leader if it exited; then kills what it left
    /// behind so the PTY closes. Returns whether the leader has exited.
    pub fn poll_leader(&self) -> bool {
        let mut exit = self.leader_exit.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Appends PTY output to the screen state and every viewer's outbox.
    fn publish(&self, data: &[u8]) {
        let chunk = Bytes::copy_from_slice(data);
        let limit = self.limits.outbox_limit();
        let mut state = self.lock();
        let inbox_bytes = {
            let mut inbox = lock(&self.inbox);
            inbox.bytes += chunk.len();
            inbox.chunks.push_back(chunk.clone());
            inbox.bytes
        };
        if inbox_bytes > INBOX_MAX {
            drop(self.terminal());
        }
        state.offset += data.len() as u64;
        state.last_active = Instant::now();
        state.last_active_ms = now_ms();
        let offset = state.offset;
        for viewer in &mut state.viewers {
            if viewer.resync || viewer.closed {
                continue;
            }
            viewer.pending_bytes += chunk.len();
            viewer.pending.push_back(chunk.clone());
            viewer.pending_end = offset;
            if viewer.pending_bytes > limit {
                // Too far behind: drop the backlog, restore from the screen.
                viewer.resync = true;
                viewer.pending.clear();
                viewer.pending_bytes = 0;
            }
            viewer.wake.notify_one();
        }
        drop(state);
        self.bytes_out
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        crate::metrics::BYTES_OUT.inc_by(data.len() as u64);
    }

    /// How long the reader must wait before reading more, if at all.
    fn pacing_delay(&self) -> Option<Duration> {
        let state = self.lock();
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        for viewer in &state.viewers {
            if !viewer.flow_control || viewer.resync || viewer.closed {
                continue;
            }
            if state.offset.saturating_sub(viewer.acked) < self.limits.window {
                return None;
            }
            let quiet = now.saturating_duration_since(viewer.last_ack);
            if let Some(left) = self
                .limits
                .stall
                .checked_sub(quiet)
                .filter(|d| !d.is_zero())
            {
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        wait
    }

    /// Starts the session's reader thread.
    fn spawn_reader(self: &Arc<Self>) -> Result<(), SessionError> {
        let session = Arc::clone(self);
        let runtime = tokio::runtime::Handle::current();
        let spawned = std::thread::Builder::new()
            .name("pty-reader".into())
            .stack_size(READER_STACK)
            .spawn(move || {
                let _runtime = runtime.enter();
                session.read_until_closed();
            });
        spawned.map(drop).map_err(|e| {
            self.pty.kill_all();
            SessionError::Spawn(format!("PTY reader thread: {e}"))
        })
    }

    /// Wakes the reader thread if it waits for viewers to acknowledge.
    fn wake_reader(&self) {
        if self.reader_paced.load(Ordering::SeqCst) {
            self.pty.wake();
        }
    }

    /// The reader thread: reads the PTY until every slave side is closed,
    /// then ends the session. It blocks in the kernel until output comes,
    /// so output is read as promptly as a plain read loop would.
    fn read_until_closed(self: Arc<Self>) {
        let _span = tracing::info_span!("session", id = %self.info.id).entered();
        let mut output = Unpublished::default();
        let mut leader_exited_at: Option<Instant> = None;
        loop {
            if self.leader_exited() {
                let since = *leader_exited_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= PTY_LINGER {
                    tracing::warn!("processes outside the session hold its terminal; killing them");
                    self.pty.kill_holders();
                    break;
                }
            }
            let paced = self.pacing_wait();
            if paced.is_some() {
                output.publish_to(&self);
            }
            let quiet = self.has_unparsed_output().then_some(PARSE_WHEN_QUIET);
            let linger = leader_exited_at.map(|since| PTY_LINGER.saturating_sub(since.elapsed()));
            let timeout = if output.is_empty() {
                output.release_buffer_if(quiet.is_none());
                [paced, quiet, linger].into_iter().flatten().min()
            } else {
                Some(COALESCE_WAIT)
            };
            let ready = self.pty.wait(paced.is_none(), timeout);
            self.reader_paced.store(false, Ordering::SeqCst);
            match ready {
                Ok(pty::Ready::Output) => {}
                Ok(pty::Ready::Woken) => continue,
                Ok(pty::Ready::Timeout) if !output.is_empty() => {
                    output.publish_to(&self);
                    continue;
                }
                Ok(pty::Ready::Timeout) => {
                    self.catch_up_until_output();
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "PTY wait failed");
                    break;
                }
            }
            match output.read_from(&self.pty) {
                Ok(0) => break,
                Ok(read) if read < BULK_READ || output.is_full() => output.publish_to(&self),
                // More is probably on its way: published together.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PTY read failed");
                    break;
                }
            }
        }
        output.publish_to(&self);
        let exit = self.await_leader();
        self.finish(exit);
    }

    /// How long the reader must leave the PTY alone for viewers to catch
    /// up, if at all; while it does, acknowledgements wake it.
    fn pacing_wait(&self) -> Option<Duration> {
        self.pacing_delay()?;
        self.reader_paced.store(true, Ordering::SeqCst);
        // Checked again: an acknowledgement before the flag was set did
        // not wake the reader.
        self.pacing_delay()
    }

    fn leader_exited(&self) -> bool {
        lock(&self.leader_exit).is_some()
    }

    /// Parses queued output while the PTY is quiet, a step at a time, so
    /// that new output and replays are not held up.
    fn catch_up_until_output(&self) {
        while self.terminal().catch_up_some(terminal::CATCH_UP_STEP) {
            if self.pty.has_output() {
                return;
            }
        }
    }

    /// The leader's exit status, killing it if it lingers after its
    /// terminal closed.
    fn await_leader(&self) -> ExitInfo {
        let started = Instant::now();
        let mut killed = false;
        loop {
            if self.poll_leader() {
                let exit = self.leader_exit.lock().unwrap_or_else(|p| p.into_inner());
                return exit.clone().unwrap_or(ExitInfo::Signal("SIGKILL".into()));
            }
            if !killed && started.elapsed() > Duration::from_secs(2) {
                self.pty.kill_all();
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(&self, exit: ExitInfo) {
        self.pty.kill_all();
        let mut state = self.lock();
        tracing::info!(session = %self.info.id, ?exit, "session ended");
        crate::metrics::SESSIONS_ENDED.inc();
        state.exit = Some(exit.clone());
        state.ended_at_ms = now_ms();
        self.terminal().freeze();
        for viewer in &mut state.viewers {
            let exit = pb::attach_response::Kind::Exit(exit_proto(&exit));
            viewer.events.push_back((viewer.pending_end, exit));
            viewer.closed = true;
            viewer.wake.notify_one();
        }
        self.announce(&mut state, pb::session_event::Kind::Ended);
        drop(state);
        self.ended.send_replace(true);
    }
}

/// Output read from the PTY but not published yet, in a buffer held only
/// while output flows (idle sessions hold none). The buffer starts at
/// [`FIRST_READ_BUFFER`] and doubles up to [`READ_CHUNK`] only while bulk
/// output is kept together, so prompts and echo never touch a large one.
#[derive(Default)]
struct Unpublished {
    buf: Option<Vec<u8>>,
    filled: usize,
}

impl Unpublished {
    fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Whether another read might not fit.
    fn is_full(&self) -> bool {
        READ_CHUNK - self.filled < BULK_READ * 2
    }

    /// Reads what the PTY holds right now after the output kept so far;
    /// `Ok(0)` at end of file.
    fn read_from(&mut self, pty: &Pty) -> std::io::Result<usize> {
        let buf = self.buf.get_or_insert_with(|| vec![0; FIRST_READ_BUFFER]);
        if buf.len() - self.filled < BULK_READ * 2 && buf.len() < READ_CHUNK {
            buf.resize((buf.len() * 2).min(READ_CHUNK), 0);
        }
        match pty.try_read(&mut buf[self.filled..])? {
            None => Err(std::io::ErrorKind::WouldBlock.into()),
            Some(read) => {
                self.filled += read;
                Ok(read)
            }
        }
    }

    /// Publishes the output kept so far.
    fn publish_to(&mut self, session: &Arc<Session>) {
        if let Some(buf) = &self.buf
            && self.filled > 0
        {
            session.publish(&buf[..self.filled]);
            self.filled = 0;
            session.drain_inbox_soon();
        }
    }

    /// Frees the buffer when `idle` (nothing is kept in it).
    fn release_buffer_if(&mut self, idle: bool) {
        if idle && self.filled == 0 {
            self.buf = None;
        }
    }
}

/// Output waiting to be handed to a session's terminal.
#[derive(Default)]
struct Inbox {
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

/// Locks `mutex`, carrying on past a panic of another holder.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    fn viewer_mut(&mut self, id: ViewerId) -> &mut Viewer {
        self.viewers
            .iter_mut()
            .find(|v| v.id == id)
            .expect("viewer present (checked under the same lock)")
    }
}

impl Viewer {
    fn push_event(&mut self, event: pb::attach_response::Kind) {
        if self.events.len() >= MAX_VIEWER_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((self.pending_end, event));
        self.wake.notify_one();
    }

    /// Coalesces pending output into one message of at most
    /// [`MAX_OUTPUT_CHUNK`] bytes, ending at or before the offset `until`
    /// (where an event waits; events sit between published chunks).
    fn take_output(&mut self, until: Option<u64>) -> Option<pb::Output> {
        let start = self.pending_end - self.pending_bytes as u64;
        let limit = until.map_or(MAX_OUTPUT_CHUNK, |until| {
            MAX_OUTPUT_CHUNK.min(until.saturating_sub(start) as usize)
        });
        let first = self.pending.pop_front()?;
        let mut data = if self
            .pending
            .front()
            .is_some_and(|next| first.len() + next.len() <= limit)
        {
            let mut buf = Vec::with_capacity(limit.min(self.pending_bytes));
            buf.extend_from_slice(&first);
            while let Some(next) = self.pending.front() {
                if buf.len() + next.len() > limit {
                    break;
                }
                buf.extend_from_slice(next);
                self.pending.pop_front();
            }
            Bytes::from(buf)
        } else {
            first
        };
        self.pending_bytes -= data.len();
        let end_offset = self.pending_end - self.pending_bytes as u64;
        Some(pb::Output {
            data: std::mem::take(&mut data),
            end_offset,
        })
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
