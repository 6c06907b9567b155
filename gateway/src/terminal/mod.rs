//! The terminal WebSocket (`/ws/sessions/{id}`): bridges one browser socket to
//! one broker `Attach` stream, per docs/protocol.md.
//!
//! Flow control: every binary frame sent is recorded with the broker stream
//! offset it ends at; the client's cumulative `ack` byte counts are mapped back
//! onto those offsets and forwarded as `AttachRequest.ack`, so acknowledging
//! viewers pace the PTY. The broker stream is always read promptly (a stalled
//! client never holds HTTP/2 flow-control credit that other viewers share);
//! output goes into the socket's byte-bounded [`Outbox`]. When a client stops
//! reading and the queue passes its bound, the queue is abandoned, the broker
//! stream detached, and once the client has drained what was already sent the
//! bridge reattaches: the fresh replay arrives as `reset` plus the screen.
//! An idle viewer is handed over to a fresh broker stream after a burst
//! (see [`link`]).

mod link;

use std::collections::VecDeque;
use std::sync::Arc;

use dispatch_proto::limits::clamp_dimension;
use dispatch_proto::v1::{
    AttachRequest, AttachResponse, AttachStart, Detach, EndSessionRequest, GetSessionRequest,
    Resize, attach_request, attach_response,
};
use futures::StreamExt;
use tokio_tungstenite::tungstenite;
use tonic::{Code, Status};
use tracing::Instrument;

use crate::auth::Credential;
use crate::broker::RequestId;
use crate::metrics::SocketKind;
use crate::model;
use crate::protocol::terminal::{ClientMessage, ServerMessage};
use crate::state::AppState;
use crate::ws::{Message, Outbox, WebSocket, close};
use link::{HANDOVER_QUIET, Link, next_response};

/// Offsets remembered for acknowledgement; older ones are forgotten (such a
/// client is not acknowledging and is resynchronised by the broker anyway).
const MAX_PENDING_ACKS: usize = 4096;
/// Input held while no stream takes it (a resynchronisation, a handover).
const MAX_PENDING_INPUT: usize = 64 * 1024;

/// What a client asked for in the upgrade URL.
#[derive(Clone, Debug)]
pub struct TerminalRequest {
    pub session_id: String,
    pub cols: u32,
    pub rows: u32,
    pub credential: Credential,
    pub request_id: RequestId,
}

impl TerminalRequest {
    /// Whether this is a share link's viewer: it watches only. Its input,
    /// resizes and `end` are refused here, and the broker attach is
    /// `read_only`, which the broker enforces again.
    pub fn read_only(&self) -> bool {
        matches!(self.credential, Credential::Share { .. })
    }
}

/// Runs one terminal socket until it closes; with `deflate`, output frames
/// are compressed (the client negotiated `ws::DEFLATE_PROTOCOL`).
pub async fn run_with(
    socket: WebSocket,
    state: Arc<AppState>,
    request: TerminalRequest,
    deflate: bool,
) {
    let span = tracing::info_span!("terminal", session = %request.session_id, request_id = %request.request_id);
    async move {
        tracing::info!("terminal attached");
        let _open = state.metrics.open_socket(SocketKind::Terminal);
        let (sink, mut stream) = socket.split();
        let outbox = Outbox::start(sink, &state.metrics);
        if deflate {
            outbox.deflate();
        }
        let mut bridge = Bridge {
            state,
            outbox,
            cols: request.cols,
            rows: request.rows,
            acks: VecDeque::new(),
            sent: 0,
            acked_offset: 0,
            request,
        };
        let (code, reason) = bridge.serve(&mut stream).await;
        tracing::info!(code, reason, "terminal closed");
        bridge.outbox.close_reading(code, reason, &mut stream).await;
    }
    .instrument(span)
    .await
}

struct Bridge {
    state: Arc<AppState>,
    outbox: Outbox,
    request: TerminalRequest,
    cols: u32,
    rows: u32,
    /// (binary bytes sent on this socket so far, broker offset they end at)
    acks: VecDeque<(u64, u64)>,
    sent: u64,
    acked_offset: u64,
}

enum Step {
    Continue,
    Close(u16, &'static str),
    /// The broker handed the viewer over: carry on with this token.
    Resume(String),
}

impl Bridge {
    async fn serve(
        &mut self,
        stream: &mut futures::stream::SplitStream<WebSocket>,
    ) -> (u16, &'static str) {
        // Subscribe first, then check: a logout racing the upgrade is not missed.
        let mut revocations = self.state.auth.revocations();
        if !self.state.auth.still_valid(&self.request.credential) {
            return (close::REVOKED, "credentials revoked");
        }
        let session = match self.get_session().await {
            Ok(session) => session,
            Err(status) => return close_for(&status),
        };
        self.outbox.json(&ServerMessage::Attached {
            session: self.shown(&session),
        });
        let mut link = match self.attach().await {
            Ok(link) => Some(link),
            Err(status) => return close_for(&status),
        };
        let mut pending_input: Vec<u8> = Vec::new();
        let expiry = self.state.auth.expires_in(&self.request.credential);
        let expired =
            tokio::time::sleep(expiry.unwrap_or(std::time::Duration::from_secs(86400 * 365)));
        tokio::pin!(expired);
        // Reset by every broker message: how long the stream has been quiet.
        let quiet = tokio::time::sleep(HANDOVER_QUIET);
        tokio::pin!(quiet);
        loop {
            let step = tokio::select! {
                _ = self.state.shutdown.cancelled() => Step::Close(close::GOING_AWAY, "gateway shutting down"),
                _ = revocations.changed() => {
                    if self.state.auth.still_valid(&self.request.credential) { Step::Continue }
                    else { Step::Close(close::REVOKED, "credentials revoked") }
                }
                _ = &mut expired, if expiry.is_some() => Step::Close(close::REVOKED, "credentials expired"),
                reason = crate::shares::revoked(&self.state.shares, &self.request.credential) => Step::Close(close::REVOKED, reason),
                _ = self.outbox.closed() => return (close::NORMAL, "client gone"),
                message = crate::ws::next_message(stream) => {
                    self.client_message(message, &mut link, &mut pending_input).await
                }
                response = next_response(&mut link) => {
                    quiet.as_mut().reset(tokio::time::Instant::now() + HANDOVER_QUIET);
                    match self.broker_message(response, &mut link) {
                        Step::Resume(token) => {
                            self.resume(&mut link, token, &mut pending_input).await;
                            Step::Continue
                        }
                        step => step,
                    }
                }
                () = &mut quiet, if link.as_ref().is_some_and(Link::worth_handing_over) => {
                    if let Some(link) = &mut link {
                        link.hand_over().await;
                    }
                    Step::Continue
                }
                _ = self.outbox.drained(), if link.is_none() => {
                    match self.attach().await {
                        Ok(new_link) => {
                            self.send_pending(&new_link, &mut pending_input).await;
                            link = Some(new_link);
                            Step::Continue
                        }
                        Err(status) => { let (c, r) = close_for(&status); Step::Close(c, r) }
                    }
                }
            };
            if let Step::Close(code, reason) = step {
                if let Some(link) = &link {
                    let _ = link.tx.try_send(AttachRequest {
                        kind: Some(attach_request::Kind::Detach(Detach {})),
                    });
                }
                return (code, reason);
            }
        }
    }

    /// A session as this socket's viewer may see it: a share viewer learns
    /// its name, status and size, not its directory, process or metadata.
    fn shown(&self, session: &dispatch_proto::v1::Session) -> crate::protocol::sessions::Session {
        if !self.request.read_only() {
            return model::session(session);
        }
        model::session(&dispatch_proto::v1::Session {
            id: session.id.clone(),
            name: session.name.clone(),
            mode: session.mode,
            requested_mode: session.mode,
            status: session.status,
            cols: session.cols,
            rows: session.rows,
            created_at_ms: session.created_at_ms,
            last_active_ms: session.last_active_ms,
            ended_at_ms: session.ended_at_ms,
            exit: session.exit.clone(),
            ..Default::default()
        })
    }

    /// Why a share viewer's message is refused, if it is one.
    fn refusal(&self, message: &Message) -> Option<&'static str> {
        if !self.request.read_only() {
            return None;
        }
        match message {
            Message::Binary(_) => Some("read-only share: input refused"),
            Message::Text(text) => match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(ClientMessage::Resize { .. }) => Some("read-only share: resize refused"),
                Ok(ClientMessage::End) => Some("read-only share: ending the session refused"),
                _ => None,
            },
            _ => None,
        }
    }

    async fn get_session(&self) -> Result<dispatch_proto::v1::Session, Status> {
        let broker = &self.state.broker;
        let request = broker.request(
            GetSessionRequest {
                id: self.request.session_id.clone(),
            },
            &self.request.request_id,
        );
        Ok(broker.sessions().get_session(request).await?.into_inner())
    }

    /// Attaches afresh: the stream starts with a replay.
    async fn attach(&mut self) -> Result<Link, Status> {
        let link = self.open_link(String::new()).await?;
        self.acks.clear();
        Ok(link)
    }

    /// Opens a broker stream, resuming the viewer handed over with `resume`
    /// unless it is empty.
    async fn open_link(&self, resume: String) -> Result<Link, Status> {
        let start = AttachStart {
            session_id: self.request.session_id.clone(),
            cols: self.cols,
            rows: self.rows,
            flow_control: true,
            read_only: self.request.read_only(),
            resume,
        };
        Link::open(&self.state.broker, start, &self.request.request_id).await
    }

    /// Carries on over a fresh stream after a handover (the old stream's
    /// buffers go with it); when the broker no longer holds the viewer,
    /// falls back to a reattach with a replay.
    async fn resume(&mut self, link: &mut Option<Link>, token: String, pending: &mut Vec<u8>) {
        *link = match self.open_link(token).await {
            Ok(new_link) => {
                self.state.metrics.stream_handed_over();
                self.send_pending(&new_link, pending).await;
                dispatch_proto::memory::hand_back_soon();
                Some(new_link)
            }
            Err(status) => {
                tracing::info!(code = ?status.code(), "handover not resumed; reattaching");
                self.acks.clear();
                None
            }
        };
    }

    /// Sends the input held while there was no stream to take it.
    async fn send_pending(&self, link: &Link, pending: &mut Vec<u8>) {
        if !pending.is_empty() {
            let input = std::mem::take(pending);
            let _ = link.tx.send(self.input_request(input)).await;
        }
    }

    async fn client_message(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
        link: &mut Option<Link>,
        pending_input: &mut Vec<u8>,
    ) -> Step {
        let message = match message {
            None => return Step::Close(close::NORMAL, "client gone"),
            Some(Err(err)) => {
                let (code, reason) = crate::ws::close_for_error(&err);
                if code != close::NORMAL {
                    tracing::info!(code, "closing the terminal socket: {err}");
                }
                return Step::Close(code, reason);
            }
            Some(Ok(message)) => message,
        };
        if let Some(refusal) = self.refusal(&message) {
            self.outbox.json(&ServerMessage::error(refusal));
            return Step::Continue;
        }
        let text = match message {
            Message::Close(_) => return Step::Close(close::NORMAL, "client closed"),
            Message::Binary(input) => {
                if dispatch_proto::input::is_typing(&input) {
                    self.state.typing.record(&self.request.session_id);
                }
                match link {
                    Some(link) if link.accepts_input() => {
                        let _ = link.tx.send(self.input_request(input)).await;
                    }
                    _ if pending_input.len() + input.len() <= MAX_PENDING_INPUT => {
                        pending_input.extend_from_slice(&input)
                    }
                    _ => {
                        self.outbox
                            .json(&ServerMessage::error("input dropped while resynchronising"));
                    }
                }
                return Step::Continue;
            }
            Message::Text(text) => text,
            _ => return Step::Continue,
        };
        let Ok(control) = serde_json::from_str::<ClientMessage>(text.as_str()) else {
            return Step::Close(close::MALFORMED, "malformed message");
        };
        match control {
            ClientMessage::Resize { cols, rows, fit } => {
                self.cols = clamp_dimension(cols, 1).into();
                self.rows = clamp_dimension(rows, 1).into();
                let resize = Resize {
                    cols: self.cols,
                    rows: self.rows,
                    fit: fit.unwrap_or(false),
                };
                self.send(link, attach_request::Kind::Resize(resize)).await;
            }
            ClientMessage::Ack { bytes } => {
                if let Some(offset) = self.ack_offset(bytes) {
                    self.send(link, attach_request::Kind::Ack(offset)).await;
                }
            }
            ClientMessage::Detach => {
                self.send(link, attach_request::Kind::Detach(Detach {}))
                    .await;
                return Step::Close(close::NORMAL, "detached");
            }
            ClientMessage::End => self.end_session().await,
            ClientMessage::Ping => {
                self.outbox.json(&ServerMessage::Pong);
            }
            ClientMessage::Unknown => {
                self.outbox
                    .json(&ServerMessage::error("unknown message type"));
            }
        }
        Step::Continue
    }

    async fn send(&self, link: &mut Option<Link>, kind: attach_request::Kind) {
        if let Some(link) = link {
            let _ = link.tx.send(AttachRequest { kind: Some(kind) }).await;
        }
    }

    async fn end_session(&self) {
        let broker = &self.state.broker;
        let request = broker.request(
            EndSessionRequest {
                id: self.request.session_id.clone(),
            },
            &self.request.request_id,
        );
        if let Err(status) = broker.sessions().end_session(request).await {
            let message = crate::error::ApiError::from_status(&status).message;
            self.outbox.json(&ServerMessage::Error { message });
        }
    }

    /// The broker offset covered by `bytes` acknowledged bytes, if it moved.
    fn ack_offset(&mut self, bytes: u64) -> Option<u64> {
        let mut offset = None;
        while let Some(&(sent, end)) = self.acks.front() {
            if sent > bytes {
                break;
            }
            offset = Some(end);
            self.acks.pop_front();
        }
        let offset = offset.filter(|o| *o > self.acked_offset)?;
        self.acked_offset = offset;
        Some(offset)
    }

    fn record(&mut self, bytes: usize, end_offset: u64) {
        self.sent += bytes as u64;
        if self.acks.len() >= MAX_PENDING_ACKS {
            self.acks.pop_front();
        }
        self.acks.push_back((self.sent, end_offset));
    }

    fn broker_message(
        &mut self,
        response: Result<Option<AttachResponse>, Status>,
        link: &mut Option<Link>,
    ) -> Step {
        let kind = match response {
            Ok(Some(AttachResponse { kind: Some(kind) })) => kind,
            Ok(Some(AttachResponse { kind: None })) => return Step::Continue,
            Ok(None) => return Step::Close(close::BROKER_UNREACHABLE, "broker closed the stream"),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "attach stream failed: {}", status.message());
                let (code, reason) = close_for(&status);
                return Step::Close(code, reason);
            }
        };
        let delivered = match kind {
            attach_response::Kind::Replay(replay) => {
                self.acked_offset = 0;
                let mut ok = self.outbox.json(&ServerMessage::Reset {
                    cols: replay.cols,
                    rows: replay.rows,
                });
                let len = replay.scrollback.len() + replay.screen.len();
                if !replay.scrollback.is_empty() {
                    ok &= self.outbox.binary(replay.scrollback);
                }
                if !replay.screen.is_empty() {
                    ok &= self.outbox.binary(replay.screen);
                }
                self.record(len, replay.offset);
                ok
            }
            attach_response::Kind::Output(output) => {
                let len = output.data.len();
                // The rest of a replay ends where the replay does, before any later output.
                let last_end = self.acks.back().map_or(self.acked_offset, |&(_, end)| end);
                let ok = if output.end_offset <= last_end {
                    self.outbox.replay(output.data)
                } else {
                    self.outbox.binary(output.data)
                };
                if ok {
                    self.record(len, output.end_offset);
                }
                ok
            }
            attach_response::Kind::Exit(exit) => {
                self.outbox.json(&model::exit(&exit));
                return Step::Close(close::NORMAL, "exited");
            }
            attach_response::Kind::Notice(notice) => self
                .outbox
                .json(&ServerMessage::Notice { text: notice.text }),
            attach_response::Kind::Session(session) => self.outbox.json(&ServerMessage::Session {
                session: self.shown(&session),
            }),
            attach_response::Kind::HandedOver(handed_over) => {
                return Step::Resume(handed_over.token);
            }
        };
        if !delivered {
            // The client stopped reading: drop the stream, reattach once it has caught up.
            tracing::info!(
                queued = self.outbox.queued(),
                "viewer stalled; resynchronising it"
            );
            *link = None;
            self.acks.clear();
        }
        Step::Continue
    }
}

impl Bridge {
    /// The request carrying `input` to the broker (counted as received).
    fn input_request(&self, input: impl Into<bytes::Bytes>) -> AttachRequest {
        let input: bytes::Bytes = input.into();
        self.state.metrics.terminal_bytes_received(input.len());
        AttachRequest {
            kind: Some(attach_request::Kind::Input(input)),
        }
    }
}

/// The close code and reason for a broker error.
fn close_for(status: &Status) -> (u16, &'static str) {
    match status.code() {
        Code::NotFound => (close::UNKNOWN_SESSION, "unknown session"),
        Code::InvalidArgument => (close::UNKNOWN_SESSION, "bad session id"),
        // The broker refused a message over its BROKER_MAX_MESSAGE_BYTES.
        Code::OutOfRange => (close::TOO_BIG, "message too large for the broker"),
        Code::Unauthenticated | Code::PermissionDenied => (
            close::BROKER_UNREACHABLE,
            "broker refused the gateway's credentials",
        ),
        _ => (close::BROKER_UNREACHABLE, "broker unreachable"),
    }
}
