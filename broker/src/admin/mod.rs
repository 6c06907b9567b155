//! Operator access to a running broker: the `dispatch.v1.Admin` gRPC service
//! (behind its own secret, `BROKER_ADMIN_TOKEN`), the figures it reads from
//! the registry and `/proc`, and the `dispatch-broker admin` client.

pub mod cli;
pub mod service;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dispatch_proto::time::now_ms;

use crate::auth::BearerAuth;
use crate::conversations::ConversationIndex;
use crate::registry::SessionRegistry;

pub use service::AdminService;

/// The services server reflection lists: every service the broker serves,
/// `dispatch.v1.Admin` only while it is on (so generic tools are not shown a
/// service that answers UNIMPLEMENTED).
pub fn reflected_services(admin_on: bool) -> Vec<String> {
    use prost::Message as _;
    use tonic::server::NamedService as _;
    let admin = <dispatch_proto::v1::admin_server::AdminServer<AdminService>>::NAME;
    let mut names: Vec<String> = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    .map(String::from)
    .into();
    let set = prost_types::FileDescriptorSet::decode(dispatch_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled descriptor set decodes");
    for file in &set.file {
        for service in &file.service {
            let name = format!("{}.{}", file.package(), service.name());
            if admin_on || name != admin {
                names.push(name);
            }
        }
    }
    names
}

/// What the Admin service and the metrics endpoint observe of the broker.
#[derive(Clone)]
pub struct BrokerState {
    pub registry: SessionRegistry,
    started: Instant,
    started_at_ms: i64,
    conversations: Arc<OnceLock<Arc<ConversationIndex>>>,
}

impl std::fmt::Debug for BrokerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerState").finish_non_exhaustive()
    }
}

/// Session counts at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionCounts {
    pub running: usize,
    pub ended: usize,
    pub viewers: usize,
}

impl BrokerState {
    pub fn new(registry: SessionRegistry) -> Self {
        Self {
            registry,
            started: Instant::now(),
            started_at_ms: now_ms(),
            conversations: Arc::new(OnceLock::new()),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn started_at_ms(&self) -> i64 {
        self.started_at_ms
    }

    /// Makes the conversation index's figures part of status and metrics.
    /// Only the first index set counts.
    pub fn set_conversations(&self, index: Arc<ConversationIndex>) {
        let _ = self.conversations.set(index);
    }

    pub fn conversations(&self) -> Option<&Arc<ConversationIndex>> {
        self.conversations.get()
    }

    pub fn counts(&self) -> SessionCounts {
        let mut counts = SessionCounts::default();
        for session in self.registry.list() {
            let stats = session.stats();
            if session.is_running() {
                counts.running += 1;
            } else {
                counts.ended += 1;
            }
            counts.viewers += stats.viewers;
        }
        counts
    }
}

/// The admin service's interceptor: `BROKER_ADMIN_TOKEN`, checked in
/// constant time; failures are counted in the metrics.
#[derive(Clone, Debug)]
pub struct AdminAuth(BearerAuth);

impl AdminAuth {
    /// `None` for an empty token: the Admin service is then not served.
    pub fn new(token: &str) -> Option<Self> {
        (!token.is_empty()).then(|| Self(BearerAuth::new(token)))
    }
}

impl tonic::service::Interceptor for AdminAuth {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        self.0.call(request).inspect_err(|_| {
            crate::metrics::ADMIN_AUTH_FAILURES.inc();
            tracing::warn!("admin call refused: missing or wrong admin token");
        })
    }
}

/// Accepts either of two tokens (server reflection answers both the gateway
/// and the operator).
#[derive(Clone, Debug)]
pub struct EitherAuth(pub BearerAuth, pub Option<BearerAuth>);

impl tonic::service::Interceptor for EitherAuth {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        if self.1.as_ref().is_some_and(|admin| admin.accepts(header)) {
            return Ok(request);
        }
        self.0.call(request)
    }
}
