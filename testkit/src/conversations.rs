//! The broker's conversation service alone, in process, over an index on
//! an ephemeral loopback port: for tests of the service and of the
//! gateway's conversation routes that need no broker process.

use std::net::SocketAddr;
use std::sync::Arc;

use dispatch_broker::conversations::{ConversationIndex, ConversationsService};
use tokio_util::sync::CancellationToken;

/// Serves `index` on 127.0.0.1:0 until `shutdown`; returns its address.
pub async fn serve(index: Arc<ConversationIndex>, shutdown: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    let service = ConversationsService::new(index).into_server();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await
            .expect("the conversation service runs");
    });
    addr
}
