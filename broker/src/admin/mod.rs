//! Operator access to a running broker: the `dispatch.v1.Admin` gRPC service
//! (behind its own secret, `BROKER_ADMIN_TOKEN`), the figures it reads from
//! the broker's state and `/proc`, and the `dispatch-broker admin` client.

pub mod cli;
pub mod service;

use crate::auth::BearerAuth;
use crate::metrics::Metrics;

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

/// The admin service's interceptor: `BROKER_ADMIN_TOKEN`, checked in
/// constant time; failures are counted in the metrics.
#[derive(Clone, Debug)]
pub struct AdminAuth(BearerAuth, Metrics);

impl AdminAuth {
    /// `None` for an empty token: the Admin service is then not served.
    /// Refusals are counted in `metrics`.
    pub fn new(token: &str, metrics: &Metrics) -> Option<Self> {
        (!token.is_empty()).then(|| Self(BearerAuth::new(token), metrics.clone()))
    }
}

impl tonic::service::Interceptor for AdminAuth {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        self.0.call(request).inspect_err(|_| {
            self.1.admin_auth_failed();
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
