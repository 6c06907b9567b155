//! WebSocket plumbing shared by the terminal and event sockets: the upgrade
//! handshake, the byte-bounded outbound queue with its writer task, keepalive
//! pings, close codes (including those for protocol errors) and message
//! limits.
//!
//! The handshake is done here rather than by warp so the socket can be built
//! with a small read buffer (4 KiB instead of tungstenite's 128 KiB, which it
//! zero-fills): an idle attached viewer then costs a few KiB, not 130.
//!
//! Memory bound: a socket whose client stops reading holds at most
//! [`QUEUE_LIMIT`] bytes of queued frames plus the WebSocket write buffer
//! (64 KiB) and one frame in flight (at most the broker's largest message);
//! past that the terminal bridge drops its queue and resynchronises the
//! client from the screen state instead of buffering. Binary frames are at
//! most [`MAX_BINARY_FRAME`] bytes: the WebSocket's write buffer keeps the
//! capacity of the largest frame it wrote, so an idle socket stays small.
//!
//! Compressed output: a terminal socket whose client offered the
//! [`DEFLATE_PROTOCOL`] subprotocol (and whose gateway allows it) gets its
//! binary frames compressed by the writer, see [`deflate`].

mod deflate;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, handshake::derive_accept_key};
use warp::http::{HeaderValue, StatusCode, header};
use warp::hyper::upgrade::{OnUpgrade, Upgraded};
use warp::reply::Response;

use crate::metrics::Metrics;

use deflate::Deflater;
pub use deflate::PROTOCOL as DEFLATE_PROTOCOL;
pub use tokio_tungstenite::tungstenite::Message;

/// A server-side WebSocket.
pub type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Bytes the WebSocket may buffer towards a client beyond its write buffer.
const MAX_WRITE_BUFFER: usize = 4 << 20;
/// Bytes queued towards one client before it counts as stalled.
pub const QUEUE_LIMIT: usize = 2 * 1024 * 1024;
/// Ping period, so idle sockets survive proxies and dead peers are noticed.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Largest binary frame sent; longer output is split.
pub const MAX_BINARY_FRAME: usize = 16 * 1024;
/// How long a socket's compressor outlives its last frame.
const DEFLATE_IDLE: Duration = Duration::from_secs(2);
/// Bytes a socket writes in one go (its queue never empty) after which the
/// allocator is asked to hand freed memory back once the queue empties.
const HAND_BACK_AFTER: usize = 256 * 1024;
/// Bytes charged for a control frame in the queue.
const CONTROL_COST: usize = 256;
/// How long a closing socket may go without progress (queued frames written,
/// frames from the client) before it is dropped.
const CLOSE_STALL: Duration = Duration::from_secs(10);

/// Close codes of docs/protocol.md.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const TOO_BIG: u16 = 1009;
    pub const MALFORMED: u16 = 4400;
    pub const REVOKED: u16 = 4401;
    pub const UNKNOWN_SESSION: u16 = 4404;
    pub const BROKER_UNREACHABLE: u16 = 4503;
}

/// The socket's limits and buffers; `max_message` bounds what the client
/// may send (a larger message closes with 1009).
fn socket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The connection's pending protocol upgrade, taken from the raw request by
/// the server loop before warp sees it (warp extensions must be `Clone`),
/// with the largest message the socket will accept from the client.
#[derive(Clone, Debug)]
pub struct PendingUpgrade {
    on_upgrade: Arc<std::sync::Mutex<Option<OnUpgrade>>>,
    max_message: usize,
}

impl PendingUpgrade {
    /// Moves a WebSocket upgrade request's `OnUpgrade` into an extension.
    pub fn extract<B>(request: &mut warp::http::Request<B>, max_message: usize) {
        let wants_websocket = request
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if wants_websocket {
            let on = warp::hyper::upgrade::on(&mut *request);
            request.extensions_mut().insert(Self {
                on_upgrade: Arc::new(std::sync::Mutex::new(Some(on))),
                max_message,
            });
        }
    }
}

/// A valid WebSocket upgrade request, ready to be accepted.
#[derive(Debug)]
pub struct WsUpgrade {
    on_upgrade: OnUpgrade,
    accept: String,
    max_message: usize,
    /// The client offered [`DEFLATE_PROTOCOL`].
    offers_deflate: bool,
    /// The answer selects [`DEFLATE_PROTOCOL`].
    deflate: bool,
}

impl WsUpgrade {
    /// The upgrade a request asks for, if it is a valid WebSocket handshake
    /// (GET, `Upgrade: websocket`, `Connection: upgrade`, version 13, a key).
    pub fn from_request(
        method: &warp::http::Method,
        headers: &warp::http::HeaderMap,
        pending: Option<PendingUpgrade>,
    ) -> Option<Self> {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let connection_upgrade = text(header::CONNECTION).is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
        if method != warp::http::Method::GET
            || !connection_upgrade
            || text(header::SEC_WEBSOCKET_VERSION) != Some("13")
        {
            return None;
        }
        let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
        let offers_deflate = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == DEFLATE_PROTOCOL);
        let pending = pending?;
        let on_upgrade = crate::sync::lock(&pending.on_upgrade).take()?;
        Some(Self {
            on_upgrade,
            accept: derive_accept_key(key.as_bytes()),
            max_message: pending.max_message,
            offers_deflate,
            deflate: false,
        })
    }

    /// Selects compressed output if the client offered it and `allowed`;
    /// whether it did.
    pub fn negotiate_deflate(&mut self, allowed: bool) -> bool {
        self.deflate = allowed && self.offers_deflate;
        self.deflate
    }

    /// Answers 101 and runs `serve` on the socket once the upgrade completes.
    pub fn accept<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        let config = socket_config(self.max_message);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    serve(socket).await;
                }
                Err(err) => tracing::debug!("WebSocket upgrade failed: {err}"),
            }
        });
        let mut response = Response::new(Vec::<u8>::new().into());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&self.accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if self.deflate {
            let protocol = HeaderValue::from_static(DEFLATE_PROTOCOL);
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

/// One frame for the writer.
enum Outbound {
    Message(Message, usize),
    /// Compress the binary frames that follow.
    Deflate,
    Close(u16, &'static str),
}

/// The sending half of a socket: a queue bounded in bytes, drained by a writer task.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    writer: JoinHandle<()>,
    /// Where binary bytes sent are counted.
    metrics: Metrics,
}

impl Outbox {
    /// Starts the writer task over the socket's sending half; terminal
    /// bytes sent are counted in `metrics`.
    pub fn start(sink: SplitSink<WebSocket, Message>, metrics: &Metrics) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let writer = tokio::spawn(write_loop(sink, rx, queued.clone(), drained.clone()));
        Self {
            tx,
            queued,
            drained,
            writer,
            metrics: metrics.clone(),
        }
    }

    /// Compresses the binary frames queued from now on (the client
    /// negotiated [`DEFLATE_PROTOCOL`]).
    pub fn deflate(&self) {
        let _ = self.tx.send(Outbound::Deflate);
    }

    /// Queues output as binary frames of at most [`MAX_BINARY_FRAME`]
    /// bytes; `false` (and nothing queued) when the client is stalled.
    pub fn binary(&self, data: bytes::Bytes) -> bool {
        !self.stalled(data.len()) && self.replay(data)
    }

    /// Queues part of a replay as [`Outbox::binary`] does, whatever the
    /// queue holds: a replay is bounded by the scrollback, and refusing its
    /// end would only resynchronise the client into the same replay.
    pub fn replay(&self, data: bytes::Bytes) -> bool {
        let cost = data.len();
        self.metrics.terminal_bytes_sent(cost);
        let mut at = 0;
        while at < data.len() {
            let end = (at + MAX_BINARY_FRAME).min(data.len());
            if !self.enqueue(Message::Binary(data.slice(at..end)), end - at) {
                return false;
            }
            at = end;
        }
        true
    }

    /// Queues a JSON text frame; `false` when the client is stalled.
    pub fn json(&self, value: &impl serde::Serialize) -> bool {
        let text = serde_json::to_string(value).unwrap_or_default();
        let cost = text.len() + CONTROL_COST;
        self.push(Message::text(text), cost)
    }

    fn push(&self, message: Message, cost: usize) -> bool {
        !self.stalled(cost) && self.enqueue(message, cost)
    }

    /// Whether queueing `cost` more bytes would pass the bound.
    fn stalled(&self, cost: usize) -> bool {
        self.queued.load(Ordering::Acquire) + cost > QUEUE_LIMIT && self.queued() > 0
    }

    fn enqueue(&self, message: Message, cost: usize) -> bool {
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

    /// Closes without loss: a close frame after everything queued, while what
    /// the client still sends is read (and dropped) until it answers the
    /// close or ends the stream. Input left unread would make the kernel
    /// answer the TCP close with a reset and throw away output not yet
    /// delivered. Gives up after [`CLOSE_STALL`] without progress.
    pub async fn close_reading(
        self,
        code: u16,
        reason: &'static str,
        stream: &mut SplitStream<WebSocket>,
    ) {
        let _ = self.tx.send(Outbound::Close(code, reason));
        let mut writer = self.writer;
        let (mut written, mut answered) = (false, false);
        let mut queued = self.queued.load(Ordering::Acquire);
        let stall = tokio::time::sleep(CLOSE_STALL);
        tokio::pin!(stall);
        while !(written && answered) {
            tokio::select! {
                _ = &mut writer, if !written => written = true,
                message = stream.next(), if !answered => match message {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => answered = true,
                    Some(Ok(_)) => stall.as_mut().reset(tokio::time::Instant::now() + CLOSE_STALL),
                },
                () = &mut stall => {
                    let now = self.queued.load(Ordering::Acquire);
                    if now >= queued {
                        tracing::info!("the client made no progress while closing; dropping it");
                        writer.abort();
                        return;
                    }
                    queued = now;
                    stall.as_mut().reset(tokio::time::Instant::now() + CLOSE_STALL);
                }
            }
        }
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
    let mut deflater: Option<Deflater> = None;
    let idle = tokio::time::sleep(DEFLATE_IDLE);
    tokio::pin!(idle);
    // Bytes written since the queue was last empty.
    let mut burst = 0;
    loop {
        let compressing = deflater.as_ref().is_some_and(Deflater::is_active);
        let outbound = tokio::select! {
            outbound = rx.recv() => outbound,
            _ = ping.tick() => {
                if sink.send(Message::Ping(bytes::Bytes::new())).await.is_err() { break; }
                continue;
            }
            () = &mut idle, if compressing => {
                deflater.as_mut().map(Deflater::release);
                dispatch_proto::memory::hand_back_soon();
                continue;
            }
        };
        match outbound {
            Some(Outbound::Deflate) => deflater = Some(Deflater::default()),
            Some(Outbound::Message(message, cost)) => {
                let message = match (message, deflater.as_mut()) {
                    (Message::Binary(raw), Some(deflater)) => {
                        idle.as_mut()
                            .reset(tokio::time::Instant::now() + DEFLATE_IDLE);
                        Message::Binary(deflater.frame(&raw))
                    }
                    (message, _) => message,
                };
                let sent = sink.send(message).await;
                burst += cost;
                if queued.fetch_sub(cost, Ordering::AcqRel) == cost {
                    drained.notify_one();
                    if burst >= HAND_BACK_AFTER {
                        // A replay or a flood went through: its buffers are free.
                        dispatch_proto::memory::hand_back_soon();
                    }
                    burst = 0;
                }
                if sent.is_err() {
                    break;
                }
            }
            Some(Outbound::Close(code, reason)) => {
                let frame = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
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
    // What the socket's buffers and its client's task held is freed now.
    dispatch_proto::memory::hand_back_soon();
}

/// The close code and reason for a receive error: 1009 for a message over
/// the limit, 1007 for text that is not UTF-8, 1002 for any other breach of
/// RFC 6455 (unmasked frames, reserved bits or opcodes, oversized or
/// fragmented control frames), 1000 when the client simply went away.
pub fn close_for_error(err: &tungstenite::Error) -> (u16, &'static str) {
    use tungstenite::error::ProtocolError;
    match err {
        tungstenite::Error::Capacity(_) => (close::TOO_BIG, "message too large"),
        tungstenite::Error::Utf8(_) => (close::INVALID_DATA, "text is not valid UTF-8"),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (close::NORMAL, "client gone")
        }
        tungstenite::Error::Protocol(_) => (close::PROTOCOL_ERROR, "WebSocket protocol error"),
        _ => (close::NORMAL, "client gone"),
    }
}

/// Reads the next client message, skipping pings, pongs and raw frames.
pub async fn next_message(
    stream: &mut futures::stream::SplitStream<WebSocket>,
) -> Option<Result<Message, tungstenite::Error>> {
    loop {
        match stream.next().await? {
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            other => return Some(other),
        }
    }
}
