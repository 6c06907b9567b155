//! A viewer's outbox: the output published since its last message and the
//! events between it, bounded so that a viewer too far behind is
//! resynchronised with a replay rather than queued without end, and
//! coalesced into [`Outgoing`] messages for its stream.
//!
//! Every message is at most [`MAX_OUTPUT_CHUNK`] bytes of output: a replay
//! goes out as a `Replay` with its first piece and then `Output` messages
//! for the rest (all ending at the replay's offset). The stream's encoding
//! and decoding buffers on both sides keep the capacity of the largest
//! message they carried, so small messages keep an idle viewer small.
//!
//! The viewer's window (how far output may run ahead of its
//! acknowledgements) follows its measured delivery rate: what it consumes in
//! `window_time`, plus a floor, at most the configured window. The floor is
//! twice the viewer's acknowledgement step (at least [`MIN_WINDOW`]), so a
//! viewer that acknowledges every so many bytes always gets that many: it
//! starts at [`MAX_ACK_STEP`] (the protocol's largest) and follows the steps
//! the viewer takes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dispatch_proto::v1 as pb;
use tokio::sync::Notify;

use super::handover::Handover;
use super::id::ViewerId;

/// Largest `Output` message (and replay piece) sent to a viewer.
pub const MAX_OUTPUT_CHUNK: usize = 32 * 1024;
/// Least window of a viewer paced by its delivery rate: what it may have in
/// flight before it acknowledged anything.
pub const MIN_WINDOW: u64 = 32 * 1024;
/// The most bytes a viewer may receive between acknowledgements
/// (docs/protocol.md): the step assumed until a viewer shows its own.
pub const MAX_ACK_STEP: u64 = 128 * 1024;
/// Shortest interval over which a delivery rate is measured.
const RATE_INTERVAL: Duration = Duration::from_millis(100);
/// Pending metadata/notice events kept per viewer.
const MAX_VIEWER_EVENTS: usize = 64;

/// What a viewer's stream should send next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built and consumed at once, never stored
pub enum Outgoing {
    Message(pb::attach_response::Kind),
    /// Nothing more will come: close the stream.
    Closed,
    /// Nothing to send now; wait for the viewer's wake-up.
    Idle,
    /// The viewer moves to a new stream: send `handed_over` with this
    /// token, then end the stream without detaching.
    HandedOver(String),
}

/// One attached viewer and its outbox.
pub(super) struct Viewer {
    pub(super) id: ViewerId,
    pub(super) flow_control: bool,
    /// This viewer's own terminal size (applied when it is active).
    pub(super) size: Option<(u16, u16)>,
    pub(super) acked: u64,
    pub(super) last_ack: Instant,
    rate: DeliveryRate,
    /// Bytes between this viewer's acknowledgements, as it takes them.
    ack_step: u64,
    /// The rest of the last replay, sent before any output that follows it.
    replay_rest: VecDeque<Bytes>,
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// Stream offset just after the pending output.
    pending_end: u64,
    /// Whether the next message must be a replay (a new viewer, or one
    /// whose outbox overflowed).
    pub(super) resync: bool,
    /// Events not sent yet, each with the stream offset it follows: output
    /// published before an event reaches the viewer before it.
    pub(super) events: VecDeque<(u64, pb::attach_response::Kind)>,
    pub(super) closed: bool,
    pub(super) wake: Arc<Notify>,
    /// A move to a new stream in progress.
    pub(super) handover: Option<Handover>,
}

impl Viewer {
    /// A viewer attached at stream offset `offset`, waiting for a replay.
    pub(super) fn new(
        id: ViewerId,
        flow_control: bool,
        size: Option<(u16, u16)>,
        offset: u64,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            id,
            flow_control,
            size,
            acked: offset,
            last_ack: Instant::now(),
            rate: DeliveryRate::new(offset),
            ack_step: MAX_ACK_STEP,
            replay_rest: VecDeque::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            pending_end: offset,
            resync: true,
            events: VecDeque::new(),
            closed: false,
            wake,
            handover: None,
        }
    }

    /// Queues a metadata or notice event after the output published so far.
    pub(super) fn push_event(&mut self, event: pb::attach_response::Kind) {
        if self.events.len() >= MAX_VIEWER_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((self.pending_end, event));
        self.wake.notify_one();
    }

    /// Queues the session's exit as the last message (after every output
    /// published so far) and closes the outbox.
    pub(super) fn close_with(&mut self, exit: pb::ExitStatus) {
        let exit = pb::attach_response::Kind::Exit(exit);
        self.events.push_back((self.pending_end, exit));
        self.closed = true;
    }

    /// Queues `chunk`, which ends at stream offset `end`; past `limit`
    /// bytes queued, drops the outbox and marks the viewer for a replay.
    pub(super) fn push_output(&mut self, chunk: &Bytes, end: u64, limit: usize) {
        if self.resync || self.closed {
            return;
        }
        self.pending_bytes += chunk.len();
        self.pending.push_back(chunk.clone());
        self.pending_end = end;
        if self.pending_bytes > limit {
            // Too far behind: drop the backlog, restore from the screen.
            self.resync = true;
            self.pending.clear();
            self.pending_bytes = 0;
        }
        self.wake.notify_one();
    }

    /// Empties the outbox after a replay of the screen at `offset`; `rest`
    /// is what of the replay did not fit its first message.
    pub(super) fn restart_at(&mut self, offset: u64, rest: VecDeque<Bytes>) {
        self.resync = false;
        self.pending = VecDeque::new();
        self.pending_bytes = 0;
        self.pending_end = offset;
        self.acked = offset;
        self.last_ack = Instant::now();
        self.rate = DeliveryRate::new(offset);
        self.replay_rest = rest;
    }

    /// Whether pieces of the last replay are still to be sent.
    pub(super) fn replaying(&self) -> bool {
        !self.replay_rest.is_empty()
    }

    /// Records an acknowledgement of output up to `offset` (at most `current`).
    pub(super) fn acknowledge(&mut self, offset: u64, current: u64) {
        let now = Instant::now();
        let step = offset.min(current).saturating_sub(self.acked);
        if step > 0 {
            // Up at once, down a quarter of the way at each step.
            self.ack_step = if step >= self.ack_step {
                step
            } else {
                self.ack_step - (self.ack_step - step) / 4
            };
        }
        self.acked = self.acked.max(offset.min(current));
        self.last_ack = now;
        self.rate.record(self.acked, now);
    }

    /// How far output may run ahead of this viewer's acknowledgements: what
    /// it consumes in `window_time` plus twice its acknowledgement step (at
    /// least [`MIN_WINDOW`]), at most `max`; `max` itself when `window_time`
    /// is zero (a fixed window).
    pub(super) fn window(&self, window_time: Duration, max: u64) -> u64 {
        if window_time.is_zero() {
            return max;
        }
        let in_time = self.rate.bytes_per_sec * window_time.as_secs_f64();
        let floor = MIN_WINDOW.max(2 * self.ack_step);
        (in_time as u64).saturating_add(floor).min(max)
    }

    /// The next output or event message, in stream order; `Closed` once
    /// an exited session's outbox is empty.
    pub(super) fn next_message(&mut self) -> Outgoing {
        if let Some(piece) = self.replay_rest.pop_front() {
            let output = pb::Output {
                data: piece,
                end_offset: self.pending_end - self.pending_bytes as u64,
            };
            if self.replay_rest.is_empty() {
                self.replay_rest = VecDeque::new();
            }
            return Outgoing::Message(pb::attach_response::Kind::Output(output));
        }
        let next_event_at = self.events.front().map(|(at, _)| *at);
        let output_start = self.pending_end - self.pending_bytes as u64;
        if next_event_at.is_none_or(|at| at > output_start)
            && let Some(output) = self.take_output(next_event_at)
        {
            return Outgoing::Message(pb::attach_response::Kind::Output(output));
        }
        if let Some((_, event)) = self.events.pop_front() {
            return Outgoing::Message(event);
        }
        if self.closed {
            Outgoing::Closed
        } else {
            Outgoing::Idle
        }
    }

    /// Coalesces pending output into one message of at most
    /// [`MAX_OUTPUT_CHUNK`] bytes, ending at or before the offset `until`
    /// (where an event waits; events sit between published chunks).
    fn take_output(&mut self, until: Option<u64>) -> Option<pb::Output> {
        let start = self.pending_end - self.pending_bytes as u64;
        let limit = until.map_or(MAX_OUTPUT_CHUNK, |until| {
            MAX_OUTPUT_CHUNK.min(until.saturating_sub(start) as usize)
        });
        let mut first = self.pending.pop_front()?;
        let mut data = if first.len() > limit {
            // A published chunk larger than a message: its head goes now,
            // the rest stays first in line.
            let head = first.split_to(limit);
            self.pending.push_front(first);
            head
        } else if self
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
        if self.pending.is_empty() {
            // A flood's backlog leaves no capacity behind on an idle viewer.
            self.pending = VecDeque::new();
        }
        let end_offset = self.pending_end - self.pending_bytes as u64;
        Some(pb::Output {
            data: std::mem::take(&mut data),
            end_offset,
        })
    }
}

/// Splits a replay into its first message's scrollback and screen (at most
/// [`MAX_OUTPUT_CHUNK`] bytes together; a replay that fits is whole) and the
/// rest, in pieces of at most that size. The pieces share the replay's
/// buffers.
pub(super) fn split_replay(scrollback: Bytes, screen: Bytes) -> (Bytes, Bytes, VecDeque<Bytes>) {
    if scrollback.len() + screen.len() <= MAX_OUTPUT_CHUNK {
        return (scrollback, screen, VecDeque::new());
    }
    let pieces = |part: &Bytes| {
        (0..part.len())
            .step_by(MAX_OUTPUT_CHUNK)
            .map(|at| part.slice(at..(at + MAX_OUTPUT_CHUNK).min(part.len())))
            .collect::<VecDeque<_>>()
    };
    let mut rest = pieces(&scrollback);
    rest.extend(pieces(&screen));
    let first = rest.pop_front().unwrap_or_default();
    if scrollback.is_empty() {
        (Bytes::new(), first, rest)
    } else {
        (first, Bytes::new(), rest)
    }
}

/// A viewer's delivery rate, measured from its acknowledgements over at
/// least [`RATE_INTERVAL`]: rises half way to a faster measurement and falls
/// a quarter of the way to a slower one, so one interval's burst of
/// acknowledgements (ack granularity, a stalled then released TCP stream)
/// does not open the window beyond what the link carries.
struct DeliveryRate {
    since: Instant,
    acked_since: u64,
    bytes_per_sec: f64,
}

impl DeliveryRate {
    fn new(acked: u64) -> Self {
        Self {
            since: Instant::now(),
            acked_since: acked,
            bytes_per_sec: 0.0,
        }
    }

    /// Takes in an acknowledgement up to `acked` at `now`.
    fn record(&mut self, acked: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < RATE_INTERVAL {
            return;
        }
        let measured = acked.saturating_sub(self.acked_since) as f64 / elapsed.as_secs_f64();
        self.bytes_per_sec = if measured >= self.bytes_per_sec {
            (self.bytes_per_sec + measured) / 2.0
        } else {
            (self.bytes_per_sec * 3.0 + measured) / 4.0
        };
        self.since = now;
        self.acked_since = acked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::attach_response::Kind;

    fn viewer() -> Viewer {
        let mut viewer = Viewer::new(ViewerId::first(), true, None, 0, Arc::new(Notify::new()));
        viewer.restart_at(0, VecDeque::new());
        viewer
    }

    /// Queues `data`, ending at `end`, with room for 1 KiB.
    fn push(viewer: &mut Viewer, data: &'static [u8], end: u64) {
        viewer.push_output(&Bytes::from_static(data), end, 1024);
    }

    fn output(message: Outgoing) -> pb::Output {
        match message {
            Outgoing::Message(Kind::Output(output)) => output,
            other => panic!("expected output, got {other:?}"),
        }
    }

    #[test]
    fn a_new_viewer_waits_for_its_replay() {
        let mut viewer = Viewer::new(ViewerId::first(), true, None, 7, Arc::new(Notify::new()));
        assert!(viewer.resync);
        push(&mut viewer, b"ignored", 14);
        viewer.restart_at(14, VecDeque::new());
        assert!(matches!(viewer.next_message(), Outgoing::Idle));
    }

    #[test]
    fn output_is_coalesced_up_to_the_next_event() {
        let mut viewer = viewer();
        push(&mut viewer, b"ab", 2);
        push(&mut viewer, b"cd", 4);
        viewer.push_event(Kind::Notice(pb::Notice {
            text: "between".into(),
        }));
        push(&mut viewer, b"ef", 6);
        let first = output(viewer.next_message());
        assert_eq!((&first.data[..], first.end_offset), (&b"abcd"[..], 4));
        let notice = viewer.next_message();
        assert!(matches!(notice, Outgoing::Message(Kind::Notice(_))));
        let last = output(viewer.next_message());
        assert_eq!((&last.data[..], last.end_offset), (&b"ef"[..], 6));
        assert!(matches!(viewer.next_message(), Outgoing::Idle));
    }

    #[test]
    fn a_chunk_larger_than_a_message_goes_out_in_pieces() {
        let mut viewer = viewer();
        let chunk = Bytes::from(vec![b'x'; 2 * MAX_OUTPUT_CHUNK + 100]);
        viewer.push_output(&chunk, chunk.len() as u64, usize::MAX);
        let mut end = 0;
        while let Outgoing::Message(Kind::Output(piece)) = viewer.next_message() {
            assert!(piece.data.len() <= MAX_OUTPUT_CHUNK);
            assert_eq!(piece.end_offset, end + piece.data.len() as u64);
            end = piece.end_offset;
        }
        assert_eq!(end, chunk.len() as u64);
    }

    #[test]
    fn an_overflowing_outbox_is_dropped_for_a_replay() {
        let mut viewer = viewer();
        viewer.push_output(&Bytes::from_static(b"12345"), 5, 8);
        assert!(!viewer.resync);
        viewer.push_output(&Bytes::from_static(b"6789"), 9, 8);
        assert!(viewer.resync);
        viewer.restart_at(9, VecDeque::new());
        assert!(matches!(viewer.next_message(), Outgoing::Idle));
    }

    #[test]
    fn a_closed_outbox_ends_with_the_exit_after_its_output() {
        let mut viewer = viewer();
        push(&mut viewer, b"bye", 3);
        viewer.close_with(pb::ExitStatus {
            code: Some(0),
            signal: String::new(),
        });
        push(&mut viewer, b"late", 7);
        assert_eq!(&output(viewer.next_message()).data[..], b"bye");
        let exit = viewer.next_message();
        assert!(matches!(exit, Outgoing::Message(Kind::Exit(_))));
        assert!(matches!(viewer.next_message(), Outgoing::Closed));
    }

    #[test]
    fn a_replay_goes_out_in_pieces_before_later_output() {
        let scrollback = Bytes::from(vec![b's'; MAX_OUTPUT_CHUNK + 10]);
        let (first, screen, rest) = split_replay(scrollback, Bytes::from_static(b"screen"));
        assert_eq!((first.len(), screen.len()), (MAX_OUTPUT_CHUNK, 0));
        let mut viewer = Viewer::new(ViewerId::first(), true, None, 5, Arc::new(Notify::new()));
        viewer.restart_at(5, rest);
        push(&mut viewer, b"later", 10);
        let pieces: Vec<pb::Output> = (0..3).map(|_| output(viewer.next_message())).collect();
        assert_eq!((pieces[0].data.len(), pieces[0].end_offset), (10, 5));
        assert_eq!(
            (&pieces[1].data[..], pieces[1].end_offset),
            (&b"screen"[..], 5)
        );
        assert_eq!(
            (&pieces[2].data[..], pieces[2].end_offset),
            (&b"later"[..], 10)
        );
        assert!(matches!(viewer.next_message(), Outgoing::Idle));
    }

    #[test]
    fn the_window_follows_the_delivery_rate() {
        let mut viewer = viewer();
        let time = Duration::from_millis(100);
        // Before any acknowledgement: room for the protocol's largest step.
        assert_eq!(viewer.window(time, 1 << 20), 2 * MAX_ACK_STEP);
        assert_eq!(viewer.window(Duration::ZERO, 1 << 20), 1 << 20);
        // A viewer acknowledging every 8 KiB comes down to the least window.
        for n in 1..=40 {
            viewer.acknowledge(n * 8192, u64::MAX);
        }
        assert_eq!(viewer.window(time, 1 << 20), MIN_WINDOW);
        let start = Instant::now();
        viewer.rate = DeliveryRate {
            since: start,
            acked_since: 0,
            bytes_per_sec: 0.0,
        };
        // 500 KB a second: the rate rises half way to it at each
        // measurement (250 KB/s, then 375 KB/s), so one burst of
        // acknowledgements does not open the window at once.
        viewer.rate.record(500_000, start + Duration::from_secs(1));
        assert_eq!(viewer.window(time, 1 << 20), 25_000 + MIN_WINDOW);
        viewer
            .rate
            .record(1_000_000, start + Duration::from_secs(2));
        assert_eq!(viewer.window(time, 1 << 20), 37_500 + MIN_WINDOW);
        assert_eq!(viewer.window(time, 40_000), 40_000);
        // A second without delivery brings it down a quarter of the way.
        viewer
            .rate
            .record(1_000_000, start + Duration::from_secs(3));
        assert_eq!(viewer.window(time, 1 << 20), 28_125 + MIN_WINDOW);
    }
}
