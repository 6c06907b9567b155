//! A terminal socket's broker `Attach` stream: opening it (a fresh attach,
//! whose first message is a replay, or the resumption of a handed-over
//! viewer), reading it, and handing an idle viewer over to a fresh stream.
//!
//! Why hand over: a stream's decoding buffer keeps the capacity of the
//! largest messages it carried, so every viewer that took a replay of a
//! full scrollback would keep tens of KiB for as long as it stays. Once a
//! stream that carried [`HANDOVER_AFTER`] bytes has been quiet for
//! [`HANDOVER_QUIET`], the bridge asks the broker to hand the viewer over
//! and carries on over a fresh stream: same viewer, same offsets, no replay.

use std::time::Duration;

use dispatch_proto::v1::{
    AttachRequest, AttachResponse, AttachStart, Handover, attach_request, attach_response,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::broker::{Broker, RequestId};

/// Output a stream must have carried before it is worth handing over.
pub(super) const HANDOVER_AFTER: usize = 64 * 1024;
/// How long such a stream stays quiet before it is handed over.
pub(super) const HANDOVER_QUIET: Duration = Duration::from_secs(1);
/// Requests queued for the broker on one stream.
const REQUESTS_QUEUED: usize = 64;

/// The live broker stream of a terminal socket.
pub(super) struct Link {
    pub(super) tx: mpsc::Sender<AttachRequest>,
    rx: Streaming<AttachResponse>,
    /// Output bytes this stream carried.
    carried: usize,
    /// `handover` was sent: the stream's next message is its last, and
    /// input waits for the stream that follows.
    handing_over: bool,
}

impl Link {
    /// Opens an `Attach` stream with `start`.
    pub(super) async fn open(
        broker: &Broker,
        start: AttachStart,
        request_id: &RequestId,
    ) -> Result<Self, Status> {
        let (tx, rx) = mpsc::channel(REQUESTS_QUEUED);
        tx.send(AttachRequest {
            kind: Some(attach_request::Kind::Start(start)),
        })
        .await
        .map_err(|_| Status::internal("attach channel closed"))?;
        let request = broker.stream_request(ReceiverStream::new(rx), request_id);
        let rx = broker.sessions().attach(request).await?.into_inner();
        Ok(Self {
            tx,
            rx,
            carried: 0,
            handing_over: false,
        })
    }

    /// Whether input may go to this stream now.
    pub(super) fn accepts_input(&self) -> bool {
        !self.handing_over
    }

    /// Whether this stream carried a burst and should be handed over once quiet.
    pub(super) fn worth_handing_over(&self) -> bool {
        !self.handing_over && self.carried >= HANDOVER_AFTER
    }

    /// Asks the broker to move this stream's viewer to a new stream.
    pub(super) async fn hand_over(&mut self) {
        self.handing_over = true;
        let handover = attach_request::Kind::Handover(Handover {});
        let _ = self
            .tx
            .send(AttachRequest {
                kind: Some(handover),
            })
            .await;
    }

    async fn next(&mut self) -> Result<Option<AttachResponse>, Status> {
        let response = self.rx.message().await;
        if let Ok(Some(AttachResponse { kind: Some(kind) })) = &response {
            self.carried += match kind {
                attach_response::Kind::Output(output) => output.data.len(),
                attach_response::Kind::Replay(replay) => {
                    replay.scrollback.len() + replay.screen.len()
                }
                _ => 0,
            };
        }
        response
    }
}

/// The next message of the live stream; never, while there is none.
pub(super) async fn next_response(
    link: &mut Option<Link>,
) -> Result<Option<AttachResponse>, Status> {
    match link {
        Some(link) => link.next().await,
        None => std::future::pending().await,
    }
}
