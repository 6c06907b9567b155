//! `dispatch-broker`: the isolated half of dispatch. Owns every PTY and
//! session directory and serves them over gRPC (`dispatch.v1.Sessions`,
//! plus `grpc.health.v1.Health` and server reflection).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use dispatch_broker::{Broker, Config, ListenAddr, Listener};
//! let config = Config::with_defaults("127.0.0.1:0".parse().unwrap(), "token", "/tmp/s".into());
//! let listener = Listener::bind(&config.listen).await?;
//! let broker = Broker::new(config)?;
//! let shutdown = broker.shutdown_handle();
//! tokio::spawn(broker.serve(listener));
//! shutdown.shutdown();
//! # Ok(()) }
//! ```

pub mod admin;
pub mod auth;
pub mod binary;
pub mod claude_hook;
pub mod client;
pub mod config;
pub mod conversations;
pub mod egress;
pub mod error;
pub mod files;
pub mod idle;
pub mod metrics;
pub mod procfs;
pub mod registry;
pub mod server;
pub mod service;
pub mod session;
pub mod state;

/// The one way to take a standard lock (shared with the gateway).
use dispatch_proto::sync;

pub use auth::BearerAuth;
pub use binary::{Cli, Command};
pub use config::{Config, ListenAddr};
pub use error::SessionError;
pub use registry::SessionRegistry;
pub use server::{Broker, Listener, ShutdownHandle, grpc_routes};
pub use session::{Session, SessionId, SessionStats};
