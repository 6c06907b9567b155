//! WebSocket plumbing shared by the terminal and event sockets: the
//! byte-bounded outbound queue with its writer task, keepalive pings, close
//! codes and frame limits.
//!
//! Memory bound: a socket whose client stops reading holds at most
//! [`QUEUE_LIMIT`] bytes of queued frames plus the WebSocket write buffer
//! (128 KiB) and one frame in flight (at most the broker's largest message);
//! past that the terminal bridge drops its queue and resynchronises the
//! client from the screen state instead of buffering.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt, stream::SplitSink};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use warp::ws::{Message, WebSocket};

/// Largest frame or message a client may send (1 MiB); larger closes with 1009.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Bytes queued towards one client before it counts as stalled.
pub const QUEUE_LIMIT: usize = 2 * 1024 * 1024;
/// Ping period, so idle sockets survive proxies and dead peers are noticed.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Bytes charged for a control frame in the queue.
const CONTROL_COST: usize = 256;

/// Close codes of docs/protocol.md.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const MALFORMED: u16 = 4400;
    pub const REVOKED: u16 = 4401;
    pub const UNKNOWN_SESSION: u16 = 4404;
    pub const BROKER_UNREACHABLE: u16 = 4503;
}

/// Applies the frame limits to an upgrade.
pub fn configure(ws: warp::ws::Ws) -> warp::ws::Ws {
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .max_write_buffer_size(4 * MAX_FRAME)
}

/// One frame for the writer.
enum Outbound {
    Message(Message, usize),
    Close(u16, &'static str),
}

/// The sending half of a socket: a queue bounded in bytes, drained by a writer task.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    writer: JoinHandle<()>,
}

impl Outbox {
    /// Starts the writer task over the socket's sending half.
    pub fn start(sink: SplitSink<WebSocket, Message>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let writer = tokio::spawn(write_loop(sink, rx, queued.clone(), drained.clone()));
        Self {
            tx,
            queued,
            drained,
            writer,
        }
    }

    /// Queues a binary frame; `false` (and nothing queued) when the client is stalled.
    pub fn binary(&self, data: bytes::Bytes) -> bool {
        let cost = data.len();
        crate::metrics::BYTES_TO_CLIENTS.add(cost as u64);
        self.push(Message::binary(data), cost)
    }

    /// Queues a JSON text frame; `false` when the client is stalled.
    pub fn json(&self, value: &serde_json::Value) -> bool {
        let text = value.to_string();
        let cost = text.len() + CONTROL_COST;
        self.push(Message::text(text), cost)
    }

    fn push(&self, message: Message, cost: usize) -> bool {
        if self.queued.load(Ordering::Acquire) + cost > QUEUE_LIMIT && self.queued() > 0 {
            return false;
        }
        self.queued.fetch_add(cost, Ordering::AcqRel);
        if self.tx.send(Outbound::Message(message, cost)).is_err() {
            self.queued.fetch_sub(cost, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Resolves once everything queued has been written.
    pub async fn drained(&self) {
        while self.queued() > 0 {
            self.drained.notified().await;
        }
    }

    /// Whether the writer has stopped (the client went away).
    pub fn is_closed(&self) -> bool {
        self.writer.is_finished()
    }

    /// Resolves when the writer stops.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Sends a close frame after what is queued, and waits (bounded) for the writer.
    pub async fn close(self, code: u16, reason: &'static str) {
        let _ = self.tx.send(Outbound::Close(code, reason));
        let mut writer = self.writer;
        if tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let outbound = tokio::select! {
            outbound = rx.recv() => outbound,
            _ = ping.tick() => {
                if sink.send(Message::ping(Vec::new())).await.is_err() { break; }
                continue;
            }
        };
        match outbound {
            Some(Outbound::Message(message, cost)) => {
                let sent = sink.send(message).await;
                if queued.fetch_sub(cost, Ordering::AcqRel) == cost {
                    drained.notify_one();
                }
                if sent.is_err() {
                    break;
                }
            }
            Some(Outbound::Close(code, reason)) => {
                let _ = sink.send(Message::close_with(code, reason)).await;
                let _ = sink.flush().await;
                // Give the client a moment to answer the close handshake.
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                break;
            }
            None => break,
        }
    }
    rx.close();
    queued.store(0, Ordering::Release);
    drained.notify_one();
}

/// Whether a receive error means the client sent a frame over the limit.
pub fn is_too_big(err: &warp::Error) -> bool {
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

/// Reads the next client message, skipping pings and pongs.
pub async fn next_message(
    stream: &mut futures::stream::SplitStream<WebSocket>,
) -> Option<Result<Message, warp::Error>> {
    loop {
        match stream.next().await? {
            Ok(message) if message.is_ping() || message.is_pong() => continue,
            other => return Some(other),
        }
    }
}
