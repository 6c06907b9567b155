//! The `dispatch.v1.Sessions` gRPC service over the session registry.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dispatch_proto::v1 as pb;
use dispatch_proto::v1::sessions_server::Sessions;
use futures::Stream;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::error::SessionError;
use crate::registry::{SessionRegistry, validate_name};
use crate::session::{HANDOVER_TIMEOUT, Outgoing, Session, StreamViewer, ViewerId};
use dispatch_proto::limits::clamp_dimension;

/// How long a new attach stream may take to send its `start` message.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages buffered between a viewer's pump and its gRPC stream.
const STREAM_BUFFER: usize = 4;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Implements `dispatch.v1.Sessions`.
#[derive(Clone, Debug)]
pub struct SessionsService {
    registry: SessionRegistry,
    shutdown: CancellationToken,
}

impl SessionsService {
    pub fn new(registry: SessionRegistry, shutdown: CancellationToken) -> Self {
        Self { registry, shutdown }
    }
}

#[tonic::async_trait]
impl Sessions for SessionsService {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let session = self.registry.create(request.into_inner())?;
        Ok(Response::new(session.to_proto()))
    }

    async fn list_sessions(
        &self,
        _request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let sessions = self.registry.list().iter().map(|s| s.to_proto()).collect();
        Ok(Response::new(pb::ListSessionsResponse { sessions }))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let session = self.registry.get(&request.into_inner().id)?;
        Ok(Response::new(session.to_proto()))
    }

    async fn rename_session(
        &self,
        request: Request<pb::RenameSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let request = request.into_inner();
        validate_name(&request.name)?;
        let session = self.registry.get(&request.id)?;
        Ok(Response::new(session.rename(request.name)))
    }

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let session = self.registry.end(&request.into_inner().id).await?;
        Ok(Response::new(session.to_proto()))
    }

    type AttachStream = ResponseStream<pb::AttachResponse>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::AttachRequest>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = request.into_inner();
        let start = match tokio::time::timeout(START_TIMEOUT, inbound.message()).await {
            Err(_) => return Err(Status::deadline_exceeded("no AttachStart received in time")),
            Ok(Err(status)) => return Err(status),
            Ok(Ok(None)) => {
                return Err(Status::invalid_argument("stream closed before AttachStart"));
            }
            Ok(Ok(Some(pb::AttachRequest {
                kind: Some(pb::attach_request::Kind::Start(start)),
            }))) => start,
            Ok(Ok(Some(_))) => {
                return Err(Status::invalid_argument(
                    "the first attach message must be `start`",
                ));
            }
        };
        let session = self.registry.get(&start.session_id)?;
        let StreamViewer {
            viewer,
            wake,
            read_only,
        } = match start.resume.as_str() {
            "" => attach_viewer(&session, &start),
            token => session.resume(token).ok_or_else(|| {
                Status::not_found("no viewer awaits this handover: unknown or expired token")
            })?,
        };
        tracing::debug!(session = %session.id(), ?viewer, resumed = !start.resume.is_empty(), read_only, "viewer attached");
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let detached = Arc::new(Notify::new());
        tokio::spawn(send_to_viewer(
            Arc::clone(&session),
            viewer,
            wake,
            tx.clone(),
            Arc::clone(&detached),
        ));
        let viewer = Attached {
            session,
            viewer,
            read_only,
        };
        tokio::spawn(receive_from_viewer(viewer, inbound, tx, detached));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchSessionsStream = ResponseStream<pb::SessionEvent>;

    async fn watch_sessions(
        &self,
        _request: Request<pb::WatchSessionsRequest>,
    ) -> Result<Response<Self::WatchSessionsStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(watch(self.registry.clone(), tx, self.shutdown.clone()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Adds the viewer an `AttachStart` without `resume` asks for.
fn attach_viewer(session: &Session, start: &pb::AttachStart) -> StreamViewer {
    let size = (!start.read_only && (start.cols != 0 || start.rows != 0)).then(|| {
        let (cols, rows) = (session.stats().cols, session.stats().rows);
        (
            clamp_dimension(start.cols, cols),
            clamp_dimension(start.rows, rows),
        )
    });
    // A read-only viewer neither paces the PTY nor drives its size.
    let flow_control = start.flow_control && !start.read_only;
    let (viewer, wake) = session.attach(flow_control, size, !start.read_only);
    StreamViewer {
        viewer,
        wake,
        read_only: start.read_only,
    }
}

/// Feeds a viewer's stream: replay, output, events, exit.
async fn send_to_viewer(
    session: Arc<Session>,
    viewer: ViewerId,
    wake: Arc<Notify>,
    tx: mpsc::Sender<Result<pb::AttachResponse, Status>>,
    detached: Arc<Notify>,
) {
    loop {
        match session.next_outgoing(viewer) {
            Outgoing::Message(kind) => {
                let message = pb::AttachResponse { kind: Some(kind) };
                tokio::select! {
                    sent = tx.send(Ok(message)) => if sent.is_err() { break },
                    () = detached.notified() => break,
                }
            }
            Outgoing::HandedOver(token) => {
                let handed_over = pb::attach_response::Kind::HandedOver(pb::HandedOver { token });
                let message = pb::AttachResponse {
                    kind: Some(handed_over),
                };
                tokio::select! {
                    _ = tx.send(Ok(message)) => {}
                    () = detached.notified() => {}
                }
                // The viewer stays for the stream that claims it.
                tracing::debug!(session = %session.id(), ?viewer, "viewer handed over");
                return;
            }
            Outgoing::Closed => break,
            Outgoing::Idle => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = detached.notified() => break,
                    () = tx.closed() => break,
                }
            }
        }
    }
    session.detach(viewer);
    tracing::debug!(session = %session.id(), ?viewer, "viewer detached");
}

/// One attach stream's viewer of a session.
struct Attached {
    session: Arc<Session>,
    viewer: ViewerId,
    /// `AttachStart.read_only`: input and resizes end the stream.
    read_only: bool,
}

/// Why a read-only viewer's message is refused, if it is.
fn read_only_refusal(read_only: bool, kind: Option<&pb::attach_request::Kind>) -> Option<Status> {
    use pb::attach_request::Kind;
    let what = match kind {
        Some(Kind::Input(_)) => "input",
        Some(Kind::Resize(_)) => "resize",
        _ => return None,
    };
    read_only.then(|| Status::permission_denied(format!("read-only attachment: {what} refused")))
}

/// Applies a viewer's input, resizes and acknowledgements.
async fn receive_from_viewer(
    attached: Attached,
    mut inbound: Streaming<pb::AttachRequest>,
    tx: mpsc::Sender<Result<pb::AttachResponse, Status>>,
    detached: Arc<Notify>,
) {
    use pb::attach_request::Kind;
    let Attached {
        session,
        viewer,
        read_only,
    } = attached;
    // The token of this stream's handover, once asked for.
    let mut handed_over = None;
    loop {
        let message = match inbound.message().await {
            Ok(Some(message)) => message,
            // Half-closed: the viewer keeps receiving output.
            Ok(None) if handed_over.is_none() => return,
            Ok(None) => break,
            Err(status) => {
                // E.g. an oversized message: end this stream with the error
                // (the session itself is untouched).
                tracing::debug!(session = %session.id(), %status, "attach stream failed");
                let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Err(status))).await;
                break;
            }
        };
        if let Some(status) = read_only_refusal(read_only, message.kind.as_ref()) {
            tracing::info!(session = %session.id(), ?viewer, %status, "read-only viewer refused");
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Err(status))).await;
            break;
        }
        match message.kind {
            Some(Kind::Input(data)) => {
                if let Err(SessionError::Io(e)) = session.input(viewer, &data).await {
                    tracing::debug!(session = %session.id(), error = %e, "input not written");
                }
            }
            Some(Kind::Resize(resize)) => {
                let (cols, rows) = (
                    clamp_dimension(resize.cols, 80),
                    clamp_dimension(resize.rows, 24),
                );
                session.resize(viewer, cols, rows, resize.fit);
            }
            Some(Kind::Ack(offset)) => session.ack(viewer, offset),
            Some(Kind::Handover(_)) => {
                handed_over = session.hand_over(viewer, read_only);
                if let Some(token) = handed_over.clone() {
                    let session = Arc::clone(&session);
                    tokio::spawn(async move {
                        tokio::time::sleep(HANDOVER_TIMEOUT).await;
                        session.drop_unclaimed(viewer, &token);
                    });
                }
            }
            Some(Kind::Detach(_)) => {
                if let Some(token) = &handed_over {
                    session.drop_unclaimed(viewer, token);
                }
                break;
            }
            Some(Kind::Start(_)) | None => {}
        }
    }
    detached.notify_one();
    if handed_over.is_some() {
        // The stream a viewer left: its buffers are free.
        dispatch_proto::memory::hand_back_soon();
    }
}

/// Streams a snapshot and then every change (a fresh snapshot after lag).
async fn watch(
    registry: SessionRegistry,
    tx: mpsc::Sender<Result<pb::SessionEvent, Status>>,
    shutdown: CancellationToken,
) {
    let mut events = registry.subscribe();
    let snapshot = |registry: &SessionRegistry| pb::SessionEvent {
        kind: pb::session_event::Kind::Snapshot as i32,
        sessions: registry.list().iter().map(|s| s.to_proto()).collect(),
    };
    if tx.send(Ok(snapshot(&registry))).await.is_err() {
        return;
    }
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            () = tx.closed() => return,
            event = events.recv() => event,
        };
        let message = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => snapshot(&registry),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tx.send(Ok(message)).await.is_err() {
            return;
        }
    }
}
