//! The link to `dispatch-broker`: one lazily connected tonic channel (HTTP/2
//! keepalive, reconnects by itself) over TCP or a Unix socket, with the
//! bearer token and a request id on every call.

use std::time::Duration;

use dispatch_proto::v1::conversations_client::ConversationsClient;
use dispatch_proto::v1::files_client::FilesClient;
use dispatch_proto::v1::sessions_client::SessionsClient;
use hyper_util::rt::TokioIo;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Time allowed for one unary call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A request id, generated per HTTP request or WebSocket and passed to the
/// broker as `x-request-id` so one action can be followed in both logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The broker's gRPC clients and credentials. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    channel: Channel,
    token: Option<AsciiMetadataValue>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// A lazily connected link to `url` (`http://host:port` or `unix:/path`).
    pub fn connect_lazy(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let token = token
            .filter(|t| !t.is_empty())
            .map(|t| MetadataValue::try_from(format!("Bearer {t}")))
            .transpose()
            .map_err(|_| anyhow::anyhow!("BROKER_TOKEN must be printable ASCII"))?;
        let channel = match url.strip_prefix("unix:") {
            Some(path) => {
                let path = path.trim_start_matches("//").to_string();
                endpoint(Endpoint::from_static("http://broker.invalid"))
                    .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    }))
            }
            None => {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("BROKER_URL {url:?} is not a URL: {e}"))?;
                endpoint(Endpoint::from(uri)).connect_lazy()
            }
        };
        Ok(Self { channel, token })
    }

    /// The `Sessions` client.
    pub fn sessions(&self) -> SessionsClient<Channel> {
        SessionsClient::new(self.channel.clone())
            .max_decoding_message_size(32 * 1024 * 1024)
            .max_encoding_message_size(4 * 1024 * 1024)
    }

    /// The `Conversations` client.
    pub fn conversations(&self) -> ConversationsClient<Channel> {
        ConversationsClient::new(self.channel.clone())
            .max_decoding_message_size(32 * 1024 * 1024)
            .max_encoding_message_size(4 * 1024 * 1024)
    }

    /// The `Files` client.
    pub fn files(&self) -> FilesClient<Channel> {
        FilesClient::new(self.channel.clone())
            .max_decoding_message_size(4 * 1024 * 1024)
            .max_encoding_message_size(4 * 1024 * 1024)
    }

    /// A unary request with credentials, request id and a deadline.
    pub fn request<T>(&self, message: T, id: &RequestId) -> tonic::Request<T> {
        let mut request = self.stream_request(message, id);
        request.set_timeout(CALL_TIMEOUT);
        request
    }

    /// A streaming request with credentials and request id (no deadline).
    pub fn stream_request<T>(&self, message: T, id: &RequestId) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Some(token) = &self.token {
            metadata.insert("authorization", token.clone());
        }
        if let Ok(value) = MetadataValue::try_from(id.0.as_str()) {
            metadata.insert("x-request-id", value);
        }
        request
    }

    /// `Ok` when the broker answers its health check as SERVING, else why not.
    pub async fn ready(&self) -> Result<(), String> {
        let mut health = HealthClient::new(self.channel.clone());
        let mut request = tonic::Request::new(HealthCheckRequest::default());
        request.set_timeout(Duration::from_secs(3));
        match health.check(request).await {
            Ok(response) if response.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
            Ok(response) => Err(format!(
                "broker not serving ({:?})",
                ServingStatus::try_from(response.get_ref().status)
                    .unwrap_or(ServingStatus::Unknown)
            )),
            Err(status) => Err(format!(
                "broker unreachable: {}",
                crate::error::unreachable_reason(&status)
            )),
        }
    }
}

fn endpoint(endpoint: Endpoint) -> Endpoint {
    dispatch_proto::transport::tuned(endpoint)
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true)
}
