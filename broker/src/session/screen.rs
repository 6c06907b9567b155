//! A session's screen, kept lazily, and the order in which the session's
//! locks are taken.
//!
//! Published output waits in the screen's inbox; the [`Terminal`] takes it
//! in on a blocking thread once enough has arrived, when the PTY goes
//! quiet (a step at a time), or at once when a replay or resize needs the
//! current screen. Publishing only appends to the inbox (and takes it in
//! itself only past [`INBOX_MAX`]), so the reader seldom waits for parsing.
//!
//! Lock order: the session [`State`], then the terminal, then the inbox.
//! [`Locks`] keeps the state and the [`Screen`] together and the types
//! admit no other order: the state is locked only by [`Locks::state`]; the
//! only guard of the terminal that leaves this module,
//! [`StateGuard::caught_up_screen`], borrows the state's guard (so the
//! state stays locked, and out of reach, while it lives); every method of
//! [`Screen`] locks and releases the terminal within the call (it holds no
//! state, so it cannot lock it); and the inbox, private to this module, is
//! locked last or alone.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::state::State;
use super::terminal::Terminal;
use crate::sync::lock;

/// Output in the inbox that starts taking it in, on a blocking thread.
const INBOX_DRAIN: usize = 256 << 10;
/// Output in the inbox that is taken in at once by whoever publishes it,
/// when the blocking thread cannot keep up: with
/// [`super::terminal::BACKLOG_MAX`], the bound of unparsed output per session.
const INBOX_MAX: usize = 2 << 20;

/// A session's state and screen, each behind its lock.
pub(super) struct Locks {
    state: Mutex<State>,
    screen: Arc<Screen>,
}

impl Locks {
    pub(super) fn new(state: State, terminal: Terminal) -> Self {
        Self {
            state: Mutex::new(state),
            screen: Arc::new(Screen {
                terminal: Mutex::new(terminal),
                inbox: Mutex::new(Inbox::default()),
                taking_in: AtomicBool::new(false),
            }),
        }
    }

    /// Locks the state; the screen is then reached through the guard.
    pub(super) fn state(&self) -> StateGuard<'_> {
        StateGuard {
            state: lock(&self.state),
            screen: &self.screen,
        }
    }

    /// The screen, for work that needs it alone.
    pub(super) fn screen(&self) -> &Arc<Screen> {
        &self.screen
    }
}

/// The locked state of a session, and the way to its screen while it is
/// held.
pub(super) struct StateGuard<'a> {
    state: MutexGuard<'a, State>,
    screen: &'a Screen,
}

impl Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl StateGuard<'_> {
    /// Appends published output to the inbox (so that, with the state
    /// held, the inbox ends at `State::offset`), taking it all in at once
    /// past [`INBOX_MAX`].
    pub(super) fn push_output(&mut self, chunk: Bytes) {
        let inbox_bytes = {
            let mut inbox = lock(&self.screen.inbox);
            inbox.bytes += chunk.len();
            inbox.chunks.push_back(chunk);
            inbox.bytes
        };
        if inbox_bytes > INBOX_MAX {
            self.screen.take_in_inbox();
        }
    }

    /// The screen at `State::offset`: locks the terminal and hands it
    /// every chunk waiting in the inbox. The state stays locked, and out
    /// of reach, while the screen is held.
    pub(super) fn caught_up_screen(&mut self) -> MutexGuard<'_, Terminal> {
        self.screen.lock_caught_up()
    }
}

/// The terminal and the output not handed to it yet.
pub(super) struct Screen {
    terminal: Mutex<Terminal>,
    /// Output published but not handed to `terminal` yet.
    inbox: Mutex<Inbox>,
    /// Whether a blocking thread is taking the inbox in.
    taking_in: AtomicBool,
}

/// Output waiting to be handed to a session's terminal.
#[derive(Default)]
struct Inbox {
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

impl Screen {
    /// Locks the terminal and hands it the inbox (terminal, then inbox).
    fn lock_caught_up(&self) -> MutexGuard<'_, Terminal> {
        let mut terminal = lock(&self.terminal);
        let inbox = std::mem::take(&mut *lock(&self.inbox));
        for chunk in inbox.chunks {
            terminal.push(chunk);
        }
        terminal
    }

    /// Hands every chunk of the inbox to the terminal (queued there, not
    /// parsed yet).
    fn take_in_inbox(&self) {
        drop(self.lock_caught_up());
    }

    /// Takes in the inbox and parses everything published so far.
    pub(super) fn catch_up(&self) {
        self.lock_caught_up().catch_up();
    }

    /// Takes in the inbox and parses about `step` bytes of what waits;
    /// returns whether more is left.
    pub(super) fn catch_up_some(&self, step: usize) -> bool {
        self.lock_caught_up().catch_up_some(step)
    }

    /// Whether output waits to be parsed (without waiting for the
    /// terminal: while another thread holds it, there is).
    pub(super) fn has_unparsed_output(&self) -> bool {
        let inbox_bytes = lock(&self.inbox).bytes;
        inbox_bytes > 0
            || self
                .terminal
                .try_lock()
                .map_or(true, |terminal| terminal.backlog() > 0)
    }

    /// Bytes the terminal holds for its scrollback.
    pub(super) fn scrollback_bytes(&self) -> usize {
        lock(&self.terminal).scrollback_bytes()
    }

    /// Hands the inbox to the terminal on a blocking thread once enough
    /// output has arrived (at most one such thread per session).
    pub(super) fn take_in_soon(self: &Arc<Self>) {
        if lock(&self.inbox).bytes < INBOX_DRAIN || self.taking_in.swap(true, Ordering::AcqRel) {
            return;
        }
        let screen = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            screen.take_in_inbox();
            screen.taking_in.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks() -> Locks {
        Locks::new(
            State::new("test".into(), (80, 24), 0),
            Terminal::new(80, 24, 4096),
        )
    }

    #[test]
    fn the_screen_under_the_state_lock_has_every_published_chunk() {
        let locks = locks();
        let mut state = locks.state();
        state.push_output(Bytes::from_static(b"hello "));
        state.push_output(Bytes::from_static(b"world"));
        assert!(locks.screen().has_unparsed_output());
        assert_eq!(state.caught_up_screen().backlog(), 11);
        drop(state);
        locks.screen().catch_up();
        assert!(!locks.screen().has_unparsed_output());
        let screen = locks.state().caught_up_screen().snapshot().screen;
        assert!(String::from_utf8_lossy(&screen).contains("hello world"));
    }

    #[test]
    fn past_its_bound_the_inbox_is_taken_in_by_the_publisher() {
        let locks = locks();
        let mut state = locks.state();
        let chunk = Bytes::from(vec![b'x'; INBOX_MAX / 2]);
        state.push_output(chunk.clone());
        state.push_output(chunk.clone());
        assert_eq!(lock(&locks.screen().inbox).bytes, INBOX_MAX);
        state.push_output(Bytes::from_static(b"y"));
        assert_eq!(lock(&locks.screen().inbox).bytes, 0);
    }
}
