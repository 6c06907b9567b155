//! The session's reader thread and its pacing (flow control).
//!
//! The PTY is read by the session's own thread, which blocks in the kernel
//! until output comes (as promptly as a plain read loop) and never parses:
//! the kernel buffers only a few KiB of a PTY's output, so any time the
//! reader spends elsewhere stalls the child. Each read is published: it
//! gets its stream offset, goes to the screen's inbox and to every
//! viewer's outbox.
//!
//! Pacing: the reader stops reading the PTY while every acknowledging
//! viewer is a full window behind (each viewer's own window, which follows
//! its delivery rate), so the child blocks on its writes. A
//! viewer that has not acknowledged for `flow_stall` stops pacing, and a
//! session without viewers never blocks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dispatch_proto::time::now_ms;

use super::pty::{self, Pty};
use super::{Session, terminal};
use crate::error::SessionError;

/// Bytes read from the PTY at once.
pub const READ_CHUNK: usize = 256 * 1024;
/// Size of the read buffer when output starts to flow.
const FIRST_READ_BUFFER: usize = 16 * 1024;
/// Queued output is parsed once the PTY has been quiet this long.
const PARSE_WHEN_QUIET: Duration = Duration::from_millis(50);
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

impl Session {
    /// Appends output to the screen's inbox and every viewer's outbox.
    pub(super) fn publish(&self, data: &[u8]) {
        let chunk = Bytes::copy_from_slice(data);
        let limit = self.limits.outbox_limit();
        let signal = self.scan_for_signal(data);
        let mut state = self.locks.state();
        state.push_output(chunk.clone());
        state.offset += data.len() as u64;
        state.touch(now_ms());
        let offset = state.offset;
        for viewer in &mut state.viewers {
            viewer.push_output(&chunk, offset, limit);
        }
        if let Some(signal) = signal {
            self.raise_attention(&mut state, &signal);
        }
        drop(state);
        self.bytes_out
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.metrics.pty_output(data.len());
    }

    /// How long the reader must wait before reading more, if at all.
    fn pacing_delay(&self) -> Option<Duration> {
        let state = self.locks.state();
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        for viewer in &state.viewers {
            if !viewer.flow_control || viewer.resync || viewer.closed {
                continue;
            }
            let window = viewer.window(self.limits.window_time, self.limits.window);
            if state.offset.saturating_sub(viewer.acked) < window {
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

    /// The most output any pacing viewer can still take before its window
    /// is full (unbounded without pacing viewers): bulk output kept together
    /// is published once it reaches this, so a window is not overshot by a
    /// whole read.
    fn window_room(&self) -> usize {
        let state = self.locks.state();
        let pacing = state
            .viewers
            .iter()
            .filter(|v| v.flow_control && !v.resync && !v.closed);
        pacing
            .map(|v| {
                let window = v.window(self.limits.window_time, self.limits.window);
                window.saturating_sub(state.offset.saturating_sub(v.acked)) as usize
            })
            .max()
            .unwrap_or(usize::MAX)
    }

    /// Starts the session's reader thread.
    pub(super) fn spawn_reader(self: &Arc<Self>) -> Result<(), SessionError> {
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
    pub(super) fn wake_reader(&self) {
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
            let quiet = self
                .locks
                .screen()
                .has_unparsed_output()
                .then_some(PARSE_WHEN_QUIET);
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
                Ok(_) if output.filled >= self.window_room() => output.publish_to(&self),
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

    /// Parses queued output while the PTY is quiet, a step at a time, so
    /// that new output and replays are not held up.
    fn catch_up_until_output(&self) {
        while self.locks.screen().catch_up_some(terminal::CATCH_UP_STEP) {
            if self.pty.has_output() {
                return;
            }
        }
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
            session.locks.screen().take_in_soon();
        }
    }

    /// Frees the buffer when `idle` (nothing is kept in it).
    fn release_buffer_if(&mut self, idle: bool) {
        if idle && self.filled == 0 {
            self.buf = None;
        }
    }
}
