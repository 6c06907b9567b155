//! A real gateway on an ephemeral loopback port, in front of a real gRPC
//! server that serves the conversation index of a generated Claude Code home.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dispatch_broker::conversations::{ConversationIndex, IndexConfig};
use dispatch_gateway::{Config, Gateway};
use dispatch_testkit::{Manifest, Spec};
use tokio_util::sync::CancellationToken;

pub const KEY: &str = "conversation-test-key-0123456789";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

/// The gateway, the conversation service and the generated home.
pub struct Stack {
    pub home: tempfile::TempDir,
    pub manifest: Manifest,
    pub base: String,
    pub http: reqwest::Client,
    broker_shutdown: CancellationToken,
    gateway_shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway_shutdown.cancel();
        self.broker_shutdown.cancel();
    }
}

impl Stack {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let home = tempfile::tempdir().unwrap();
        let manifest = dispatch_testkit::generate(home.path(), &Spec::default()).unwrap();
        let broker_shutdown = CancellationToken::new();
        let mut config = IndexConfig::new(home.path());
        config.rescan_interval = Duration::from_secs(3600);
        let index = ConversationIndex::open(config, broker_shutdown.clone()).await;
        let broker_addr =
            dispatch_testkit::conversations::serve(Arc::clone(&index), broker_shutdown.clone())
                .await;

        let cli = Cli::try_parse_from([
            "dispatch-gateway",
            "--port",
            "0",
            "--terminal-key",
            KEY,
            "--broker-url",
            &format!("http://{broker_addr}"),
            "--state-dir",
            home.path().join("gateway-state").to_str().unwrap(),
        ])
        .unwrap();
        let gateway = Gateway::new(cli.config).unwrap();
        let gateway_shutdown = gateway.shutdown_token();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(gateway.serve(listener));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            home,
            manifest,
            base,
            http,
            broker_shutdown,
            gateway_shutdown,
        }
    }

    /// An authenticated GET.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
    }

    /// An authenticated GET answering JSON, with its status.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}
