//! Starts the conversation index and its gRPC service on an ephemeral
//! loopback port over a generated Claude Code home, and connects a client.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dispatch_broker::conversations::{ConversationIndex, IndexConfig};
use dispatch_proto::v1::conversations_client::ConversationsClient;
use dispatch_testkit::{Manifest, Spec};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A running conversation service over a generated home.
pub struct Harness {
    pub home: tempfile::TempDir,
    pub manifest: Manifest,
    pub index: Arc<ConversationIndex>,
    pub client: ConversationsClient<Channel>,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    pub async fn start(spec: Spec) -> Self {
        Self::start_with(spec, |_| {}).await
    }

    /// Like [`Self::start`], with the index configuration adjusted (the
    /// periodic rescan is off, an hour, unless `configure` sets it).
    pub async fn start_with(spec: Spec, configure: impl FnOnce(&mut IndexConfig)) -> Self {
        let home = tempfile::tempdir().unwrap();
        let manifest = dispatch_testkit::generate(home.path(), &spec).unwrap();
        let shutdown = CancellationToken::new();
        let mut config = IndexConfig::new(home.path());
        config.rescan_interval = Duration::from_secs(3600);
        configure(&mut config);
        let index = ConversationIndex::open(config, shutdown.clone()).await;
        let client = serve(Arc::clone(&index), shutdown.clone()).await;
        Self {
            home,
            manifest,
            index,
            client,
            shutdown,
        }
    }

    pub fn root(&self) -> &Path {
        self.home.path()
    }
}

/// Serves the index on 127.0.0.1:0 and returns a connected client.
pub async fn serve(
    index: Arc<ConversationIndex>,
    shutdown: CancellationToken,
) -> ConversationsClient<Channel> {
    let addr = dispatch_testkit::conversations::serve(index, shutdown).await;
    ConversationsClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}
