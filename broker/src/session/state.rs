//! A session's mutable state, kept behind its lock (see [`super::screen`]
//! for how that lock is taken): name, stream offset, size and the viewer
//! driving it, viewers, activity and exit.

use std::time::Instant;

use super::ExitInfo;
use super::id::ViewerId;
use super::outbox::Viewer;

pub(super) struct State {
    pub(super) name: String,
    /// Bytes published so far: the stream offset of the next output.
    pub(super) offset: u64,
    pub(super) cols: u16,
    pub(super) rows: u16,
    pub(super) viewers: Vec<Viewer>,
    pub(super) next_viewer: ViewerId,
    /// The viewer whose size the PTY takes (see [`super::viewers`]).
    pub(super) driver: Option<ViewerId>,
    pub(super) last_active: Instant,
    pub(super) last_active_ms: i64,
    pub(super) exit: Option<ExitInfo>,
    pub(super) ended_at_ms: i64,
    pub(super) attention: super::attention::Attention,
}

impl State {
    /// The state of a session just started under `name`.
    pub(super) fn new(name: String, (cols, rows): (u16, u16), now_ms: i64) -> Self {
        Self {
            name,
            offset: 0,
            cols,
            rows,
            viewers: Vec::new(),
            next_viewer: ViewerId::first(),
            driver: None,
            last_active: Instant::now(),
            last_active_ms: now_ms,
            exit: None,
            ended_at_ms: 0,
            attention: Default::default(),
        }
    }

    pub(super) fn viewer(&mut self, id: ViewerId) -> Option<&mut Viewer> {
        self.viewers.iter_mut().find(|v| v.id == id)
    }

    /// Records output or input just now.
    pub(super) fn touch(&mut self, now_ms: i64) {
        self.last_active = Instant::now();
        self.last_active_ms = now_ms;
    }
}
