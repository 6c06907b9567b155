//! What a session's viewers do: attach and detach, take their next message
//! (a replay first, then output and events in stream order), acknowledge
//! output, resize, type, and receive notices.
//!
//! Who sizes the PTY: one viewer drives it, and the PTY takes that viewer's
//! size. A viewer attaching while none drives becomes the driver; a viewer
//! that types, or resizes with `fit`, takes over. Every other viewer only
//! watches: its size is recorded (for when it types) but never applied, so
//! opening a session on a second screen changes nothing for the first. All
//! viewers are told the PTY's size (the replay, then a `session` message at
//! each change) and render at that size.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dispatch_proto::time::now_ms;
use dispatch_proto::v1 as pb;
use tokio::sync::Notify;

use super::id::ViewerId;
use super::outbox::{Outgoing, Viewer, split_replay};
use super::screen::StateGuard;
use super::{Session, exit_proto};
use crate::error::SessionError;

impl Session {
    /// Adds a viewer; its first message will be a replay. A viewer that may
    /// not `drive` (a read-only one) never takes the PTY's size.
    pub fn attach(
        &self,
        flow_control: bool,
        size: Option<(u16, u16)>,
        drive: bool,
    ) -> (ViewerId, Arc<Notify>) {
        let mut state = self.locks.state();
        let id = state.next_viewer;
        state.next_viewer = id.next();
        let wake = Arc::new(Notify::new());
        let mut viewer = Viewer::new(id, flow_control, size, state.offset, Arc::clone(&wake));
        if let Some(exit) = &state.exit {
            viewer.close_with(exit_proto(exit));
        }
        state.viewers.push(viewer);
        if drive && state.driver.is_none() {
            state.driver = Some(id);
            if let Some((cols, rows)) = size {
                self.apply_size(&mut state, cols, rows);
            }
        }
        self.announce(&mut state, pb::session_event::Kind::Updated);
        wake.notify_one();
        (id, wake)
    }

    /// Removes a viewer.
    pub fn detach(&self, viewer: ViewerId) {
        let mut state = self.locks.state();
        let before = state.viewers.len();
        state.viewers.retain(|v| v.id != viewer);
        if state.driver == Some(viewer) {
            state.driver = None;
        }
        if state.viewers.len() != before {
            self.announce(&mut state, pb::session_event::Kind::Updated);
        }
        drop(state);
        self.wake_reader();
        dispatch_proto::memory::hand_back_soon();
    }

    /// The next message for a viewer's stream.
    pub fn next_outgoing(&self, viewer: ViewerId) -> Outgoing {
        let mut state = self.locks.state();
        let Some(v) = state.viewer(viewer) else {
            return Outgoing::Closed;
        };
        if let Some(handover) = &mut v.handover {
            // Moving to a new stream: this one sends the token and ends.
            return handover
                .release()
                .map_or(Outgoing::Idle, Outgoing::HandedOver);
        }
        if !v.resync {
            let replaying = v.replaying();
            let message = v.next_message();
            if replaying && !v.replaying() {
                // The replay's last piece is out: its buffers are free.
                dispatch_proto::memory::hand_back_soon();
            }
            return message;
        }
        let snapshot = state.caught_up_screen().snapshot();
        let (offset, cols, rows) = (state.offset, state.cols, state.rows);
        let (scrollback, screen, rest) = split_replay(snapshot.scrollback, snapshot.screen);
        let continued = rest.iter().map(|piece| piece.len() as u64).sum();
        if let Some(v) = state.viewer(viewer) {
            v.restart_at(offset, rest);
        }
        Outgoing::Message(pb::attach_response::Kind::Replay(pb::Replay {
            scrollback,
            screen,
            offset,
            cols: u32::from(cols),
            rows: u32::from(rows),
            continued,
        }))
    }

    /// Records that a viewer consumed output up to `offset`.
    pub fn ack(&self, viewer: ViewerId, offset: u64) {
        let mut state = self.locks.state();
        let current = state.offset;
        if let Some(v) = state.viewer(viewer) {
            v.acknowledge(offset, current);
        }
        drop(state);
        self.wake_reader();
    }

    /// Records a viewer's own size; the PTY takes it when that viewer
    /// drives, or when `fit` makes it the driver.
    pub fn resize(&self, viewer: ViewerId, cols: u16, rows: u16, fit: bool) {
        let mut state = self.locks.state();
        let Some(v) = state.viewer(viewer) else {
            return;
        };
        v.size = Some((cols, rows));
        if fit {
            state.driver = Some(viewer);
        }
        if state.driver == Some(viewer) {
            self.apply_size(&mut state, cols, rows);
        }
    }

    fn apply_size(&self, state: &mut StateGuard<'_>, cols: u16, rows: u16) {
        if (state.cols, state.rows) == (cols, rows) || state.exit.is_some() {
            return;
        }
        state.cols = cols;
        state.rows = rows;
        state.caught_up_screen().resize(cols, rows);
        self.pty.resize(cols, rows);
        self.announce(state, pb::session_event::Kind::Updated);
    }

    /// Writes a viewer's keystrokes to the PTY; that viewer now drives the
    /// PTY's size.
    pub async fn input(&self, viewer: ViewerId, data: &[u8]) -> Result<(), SessionError> {
        {
            let mut state = self.locks.state();
            if state.exit.is_some() {
                return Err(SessionError::Ended(self.info.id.to_string()));
            }
            let size = state.viewer(viewer).map(|v| v.size);
            if let Some(size) = size {
                state.driver = Some(viewer);
                if let Some((cols, rows)) = size {
                    self.apply_size(&mut state, cols, rows);
                }
            }
            state.touch(now_ms());
            if dispatch_proto::input::is_typing(data) && state.attention.clear() {
                self.announce(&mut state, pb::session_event::Kind::Updated);
            }
        }
        let _serialised = self.input.lock().await;
        self.pty.write_all(data).await?;
        self.bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.metrics.pty_input(data.len());
        Ok(())
    }

    /// Sends a notice line to every viewer.
    pub fn notify_viewers(&self, text: &str) {
        let mut state = self.locks.state();
        for viewer in &mut state.viewers {
            viewer.push_event(pb::attach_response::Kind::Notice(pb::Notice {
                text: text.to_owned(),
            }));
        }
    }
}
