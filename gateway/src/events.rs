//! The session-list WebSocket (`/ws/events`): the broker's `WatchSessions`
//! stream as [`EventMessage`] text frames, per docs/protocol.md. A client that stops
//! reading is not buffered: its queue is dropped and, once it catches up, it
//! gets a fresh full list. The socket closes with 4401 when the login it was
//! opened with is revoked (logout) or expires.

use std::sync::Arc;

use dispatch_proto::v1::{SessionEvent, WatchSessionsRequest};
use futures::StreamExt;
use tonic::Streaming;
use tracing::Instrument;

use crate::auth::Credential;
use crate::broker::RequestId;
use crate::metrics::SocketKind;
use crate::model;
use crate::protocol::events::{EventClientMessage, EventMessage};
use crate::state::AppState;
use crate::ws::{Message, Outbox, WebSocket, close};

/// Runs one event socket until it closes.
pub async fn run(socket: WebSocket, state: Arc<AppState>, credential: Credential, id: RequestId) {
    let span = tracing::info_span!("events", request_id = %id);
    async move {
        let _open = state.metrics.open_socket(SocketKind::Events);
        let (sink, mut stream) = socket.split();
        let outbox = Outbox::start(sink, &state.metrics);
        let (code, reason) = serve(&state, &outbox, &mut stream, &credential, &id).await;
        tracing::debug!(code, reason, "event socket closed");
        outbox.close(code, reason).await;
    }
    .instrument(span)
    .await
}

async fn watch(state: &AppState, id: &RequestId) -> Result<Streaming<SessionEvent>, tonic::Status> {
    let request = state.broker.stream_request(WatchSessionsRequest {}, id);
    Ok(state
        .broker
        .sessions()
        .watch_sessions(request)
        .await?
        .into_inner())
}

async fn serve(
    state: &AppState,
    outbox: &Outbox,
    stream: &mut futures::stream::SplitStream<WebSocket>,
    credential: &Credential,
    id: &RequestId,
) -> (u16, &'static str) {
    let ended = state.auth.ended(credential);
    tokio::pin!(ended);
    let mut events = tokio::select! {
        reason = &mut ended => return (close::REVOKED, reason),
        events = watch(state, id) => match events {
            Ok(events) => Some(events),
            Err(_) => return (close::BROKER_UNREACHABLE, "broker unreachable"),
        },
    };
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return (close::GOING_AWAY, "gateway shutting down"),
            reason = &mut ended => return (close::REVOKED, reason),
            _ = outbox.closed() => return (close::NORMAL, "client gone"),
            message = crate::ws::next_message(stream) => match message {
                None => return (close::NORMAL, "client gone"),
                Some(Err(err)) => return crate::ws::close_for_error(&err),
                Some(Ok(Message::Close(_))) => return (close::NORMAL, "client closed"),
                Some(Ok(Message::Text(text))) if is_ping(text.as_str()) => {
                    outbox.json(&EventMessage::Pong);
                }
                Some(Ok(_)) => {}
            },
            event = next_event(&mut events) => match event {
                Ok(Some(event)) => {
                    let delivered = model::session_event(&event).iter().all(|m| outbox.json(m));
                    if !delivered {
                        events = None;
                    }
                }
                Ok(None) | Err(_) => return (close::BROKER_UNREACHABLE, "broker unreachable"),
            },
            _ = outbox.drained(), if events.is_none() => {
                match watch(state, id).await {
                    Ok(stream) => events = Some(stream),
                    Err(_) => return (close::BROKER_UNREACHABLE, "broker unreachable"),
                }
            }
        }
    }
}

/// Whether a client's text message is a `ping` (the only one this socket answers).
fn is_ping(text: &str) -> bool {
    matches!(serde_json::from_str(text), Ok(EventClientMessage::Ping))
}

async fn next_event(
    events: &mut Option<Streaming<SessionEvent>>,
) -> Result<Option<SessionEvent>, tonic::Status> {
    match events {
        Some(events) => events.message().await,
        None => std::future::pending().await,
    }
}
