//! Connecting to a broker: a tonic channel over TCP or a Unix socket, the
//! `authorization` header, and the health check used by `healthcheck`.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::config::ListenAddr;

/// Opens a channel to the broker at `addr`.
pub async fn connect(addr: &ListenAddr) -> Result<Channel, tonic::transport::Error> {
    match addr {
        ListenAddr::Tcp(addr) => {
            endpoint(Endpoint::from_shared(format!("http://{addr}"))?)
                .tcp_nodelay(true)
                .connect()
                .await
        }
        ListenAddr::Unix(path) => {
            let path = path.clone();
            // The URI is required by tonic but unused by the connector.
            endpoint(Endpoint::from_static("http://localhost"))
                .connect_with_connector(tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        tokio::net::UnixStream::connect(path)
                            .await
                            .map(TokioIo::new)
                    }
                }))
                .await
        }
    }
}

fn endpoint(endpoint: Endpoint) -> Endpoint {
    dispatch_proto::transport::tuned(endpoint).connect_timeout(Duration::from_secs(5))
}

/// Adds `authorization: Bearer <token>` to every request of a client.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        let mut value: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Whether the broker at `addr` answers SERVING.
pub async fn healthcheck(addr: &ListenAddr) -> anyhow::Result<bool> {
    let channel = connect(addr).await?;
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        HealthClient::new(channel).check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await??;
    Ok(response.into_inner().status == ServingStatus::Serving as i32)
}
