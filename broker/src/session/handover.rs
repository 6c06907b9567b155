//! Handing a viewer over to a new attach stream. An idle viewer's stream
//! keeps buffers as large as the biggest messages it carried (a replay's
//! pieces); moving the viewer to a fresh stream sheds them. The viewer
//! itself stays: its outbox, acknowledged offset, delivery rate, size,
//! driving and its place in the viewer count, so nothing is announced and
//! nothing is lost or replayed.
//!
//! The old stream asks ([`Session::hand_over`]); its next message is
//! `handed_over` with a token, after which that stream ends without
//! detaching. A new stream claims the viewer with the token
//! ([`Session::resume`]); a viewer not claimed within [`HANDOVER_TIMEOUT`]
//! leaves ([`Session::drop_unclaimed`]).

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::Session;
use super::id::ViewerId;

/// How long a handed-over viewer waits for a new stream to claim it.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// A viewer's handover in progress.
#[derive(Debug)]
pub(super) struct Handover {
    token: String,
    /// Whether the viewer's stream was read-only: the new one is too.
    read_only: bool,
    /// The old stream has sent `handed_over` and takes nothing more.
    released: bool,
}

impl Handover {
    /// The token, the first time the old stream asks for its next message
    /// (then the viewer is released from it).
    pub(super) fn release(&mut self) -> Option<String> {
        (!self.released).then(|| {
            self.released = true;
            self.token.clone()
        })
    }

    fn claims(&self, token: &str) -> bool {
        self.released && bool::from(self.token.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// A viewer and what the stream serving it needs.
pub struct StreamViewer {
    pub viewer: ViewerId,
    pub wake: Arc<Notify>,
    pub read_only: bool,
}

impl Session {
    /// Starts handing `viewer` (on a `read_only` stream or not) over to a
    /// new stream; returns the token its old stream will send as its last
    /// message, or `None` if the viewer is gone.
    pub fn hand_over(&self, viewer: ViewerId, read_only: bool) -> Option<String> {
        let mut state = self.locks.state();
        let v = state.viewer(viewer)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        v.handover = Some(Handover {
            token: token.clone(),
            read_only,
            released: false,
        });
        v.wake.notify_one();
        Some(token)
    }

    /// The viewer released with `token`, now served by the calling stream,
    /// and whether its stream is read-only.
    pub fn resume(&self, token: &str) -> Option<StreamViewer> {
        let mut state = self.locks.state();
        let v = state
            .viewers
            .iter_mut()
            .find(|v| v.handover.as_ref().is_some_and(|h| h.claims(token)))?;
        let read_only = v.handover.take().is_some_and(|h| h.read_only);
        v.wake.notify_one();
        Some(StreamViewer {
            viewer: v.id,
            wake: Arc::clone(&v.wake),
            read_only,
        })
    }

    /// Detaches `viewer` if it still awaits a stream for the handover
    /// `token` (not claimed in time, or its old stream detached).
    pub fn drop_unclaimed(&self, viewer: ViewerId, token: &str) {
        let waiting = {
            let mut state = self.locks.state();
            state
                .viewer(viewer)
                .and_then(|v| v.handover.as_ref())
                .is_some_and(|h| h.token == token)
        };
        if waiting {
            tracing::debug!(session = %self.id(), ?viewer, "handed-over viewer not claimed");
            self.detach(viewer);
        }
    }
}
