//! The broker server: listeners (TCP or a private Unix socket), the tonic
//! router with every service, authentication and graceful shutdown.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dispatch_proto::v1::sessions_server::SessionsServer;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::admin::{AdminAuth, AdminService, EitherAuth};
use crate::auth::BearerAuth;
use crate::config::{Config, ListenAddr};
use crate::conversations::{ConversationIndex, ConversationsService, IndexConfig, PriceTable};
use crate::metrics::Metrics;
use crate::registry::{SessionRegistry, prepare_pty_root};
use crate::service::SessionsService;
use crate::state::BrokerState;

/// A bound listener the broker serves on.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// A Unix socket; its file is removed when the server stops.
    Unix(UnixListener, PathBuf),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self::Tcp(listener)
    }
}

impl Listener {
    /// Binds `addr`. A Unix socket gets mode 0600 (its directory is created
    /// with 0700 when missing); a stale socket file left by a dead broker is
    /// replaced, a live one is an error.
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Self> {
        match addr {
            ListenAddr::Tcp(addr) => Ok(Self::Tcp(TcpListener::bind(addr).await?)),
            ListenAddr::Unix(path) => bind_unix(path).await,
        }
    }

    /// The address actually bound (with the real port for port 0).
    pub fn local_addr(&self) -> std::io::Result<ListenAddr> {
        match self {
            Self::Tcp(listener) => listener.local_addr().map(ListenAddr::Tcp),
            Self::Unix(_, path) => Ok(ListenAddr::Unix(path.clone())),
        }
    }
}

async fn bind_unix(path: &Path) -> std::io::Result<Listener> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new().recursive(true).create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("a server is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Listener::Unix(listener, path.to_path_buf()))
}

/// Stops a running broker.
#[derive(Clone, Debug)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Stops accepting, tells attached viewers, ends every session, returns
    /// from `serve`.
    pub fn shutdown(&self) {
        self.0.cancel();
    }

    pub fn is_shutdown(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once shutdown was requested.
    pub async fn requested(&self) {
        self.0.cancelled().await;
    }
}

/// The broker: configuration, session registry and gRPC server.
#[derive(Debug)]
pub struct Broker {
    config: Arc<Config>,
    registry: SessionRegistry,
    conversations: Arc<ConversationIndex>,
    shutdown: CancellationToken,
    /// What admin calls and metrics observe.
    state: BrokerState,
}

impl Broker {
    /// Validates `config`, prepares `PTY_ROOT` and starts the registry. Must
    /// be called inside a Tokio runtime.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        prepare_pty_root(&config.pty_root)?;
        let config = Arc::new(config);
        let shutdown = CancellationToken::new();
        let metrics = Metrics::default();
        let registry = SessionRegistry::new(Arc::clone(&config), metrics.clone(), shutdown.clone());
        let claude_home = config
            .claude_home
            .clone()
            .unwrap_or_else(IndexConfig::default_claude_home);
        let mut index_config = IndexConfig::new(claude_home);
        if let Some(path) = &config.prices_file {
            index_config.prices = Arc::new(PriceTable::load(path).map_err(anyhow::Error::msg)?);
        }
        let conversations = ConversationIndex::start(index_config, shutdown.clone());
        let state = BrokerState::new(registry.clone(), Arc::clone(&conversations), metrics);
        Ok(Self {
            config,
            registry,
            conversations,
            shutdown,
            state,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The sessions (live figures through [`crate::Session::stats`]).
    pub fn registry(&self) -> &SessionRegistry {
        &self.registry
    }

    /// What the Admin service and the metrics observe (uptime, counts,
    /// counters and the conversation index).
    pub fn state(&self) -> &BrokerState {
        &self.state
    }

    /// Serves Prometheus metrics on `listener` (`GET /metrics`) until
    /// shutdown.
    pub fn serve_metrics(&self, listener: TcpListener) {
        tokio::spawn(crate::metrics::serve(
            listener,
            self.state.clone(),
            self.shutdown.clone(),
        ));
    }

    /// The interceptor checking `BROKER_TOKEN`.
    pub fn auth(&self) -> BearerAuth {
        BearerAuth::new(&self.config.token.0)
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Serves every service on `listener` until shutdown is requested, then
    /// ends all sessions and returns.
    pub async fn serve(self, listener: impl Into<Listener>) -> anyhow::Result<()> {
        let listener = listener.into();
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<SessionsServer<SessionsService>>()
            .await;
        let routes = grpc_routes(&self, health_service)?;
        tracing::info!(listen = %listener.local_addr()?, "dispatch-broker serving");
        let stopped = self.stopped(health.clone());
        let last_call = crate::idle::LastCall::default();
        let touched = last_call.clone();
        let server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .trace_fn(move |request| {
                touched.touch();
                request_span(request)
            })
            .layer(self.state.metrics().grpc_layer())
            .add_routes(routes);
        let socket_path = match &listener {
            Listener::Unix(_, path) => Some(path.clone()),
            Listener::Tcp(_) => None,
        };
        if self.config.idle_exit_secs > 0 {
            tokio::spawn(crate::idle::watch(
                self.registry.clone(),
                last_call,
                Duration::from_secs(self.config.idle_exit_secs),
                socket_path.clone(),
                self.shutdown.clone(),
            ));
        }
        let serving = async {
            match listener {
                Listener::Tcp(l) => {
                    server
                        // TCP_NODELAY: responses written in several segments
                        // are not held back by Nagle's algorithm.
                        .serve_with_incoming_shutdown(
                            tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true)),
                            stopped,
                        )
                        .await
                }
                Listener::Unix(l, _) => {
                    server
                        .serve_with_incoming_shutdown(UnixListenerStream::new(l), stopped)
                        .await
                }
            }
        };
        // Streams that linger after every session ended do not hold the
        // process forever.
        let shutdown = self.shutdown.clone();
        let deadline = async move {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_secs(15)).await;
        };
        let result = tokio::select! {
            result = serving => result.map_err(anyhow::Error::from),
            () = deadline => Ok(()),
        };
        if let Some(path) = socket_path {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("dispatch-broker stopped");
        result
    }

    /// Resolves when shutdown was requested and every session has ended.
    fn stopped(&self, health: HealthReporter) -> impl Future<Output = ()> + Send + 'static {
        let shutdown = self.shutdown.clone();
        let registry = self.registry.clone();
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: ending every session");
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            health
                .set_not_serving::<SessionsServer<SessionsService>>()
                .await;
            registry.shutdown().await;
        }
    }
}

/// The span of one gRPC call: its method and the caller's `x-request-id`
/// (the gateway's id for the HTTP request or WebSocket behind it).
fn request_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| id.len() <= 128)
        .unwrap_or("");
    tracing::info_span!("grpc", method = request.uri().path(), request_id)
}

/// Builds the gRPC router: `dispatch.v1.Sessions` and server reflection
/// behind [`BearerAuth`], `grpc.health.v1.Health` without authentication,
/// and `dispatch.v1.Admin` behind its own token when one is configured
/// (reflection accepts either token). Further services are added here,
/// each wrapped in its interceptor.
pub fn grpc_routes(
    broker: &Broker,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> anyhow::Result<Routes> {
    let auth = broker.auth();
    let max_message = broker.config.max_message_bytes;
    let sessions = SessionsServer::new(SessionsService::new(
        broker.registry.clone(),
        broker.shutdown.clone(),
    ))
    .max_decoding_message_size(max_message);
    let admin_auth = AdminAuth::new(&broker.config.admin_token.0, broker.state.metrics());
    let reflection_builder = || {
        crate::admin::reflected_services(admin_auth.is_some())
            .into_iter()
            .fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(dispatch_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
                |builder, name| builder.with_service_name(name),
            )
    };
    let reflection = reflection_builder().build_v1()?;
    // The older v1alpha protocol too, for clients that only speak it
    // (Python's grpcio-reflection, older grpcurl).
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let reflection_auth = EitherAuth(
        auth.clone(),
        admin_auth
            .as_ref()
            .map(|_| BearerAuth::new(&broker.config.admin_token.0)),
    );
    let conversations = ConversationsService::new(Arc::clone(&broker.conversations))
        .into_server()
        .max_decoding_message_size(max_message);
    let files = crate::files::FilesService::new(broker.registry.clone())
        .into_server()
        .max_decoding_message_size(max_message);
    let mut routes = Routes::new(health_service)
        .add_service(InterceptedService::new(sessions, auth.clone()))
        .add_service(InterceptedService::new(conversations, auth.clone()))
        .add_service(InterceptedService::new(files, auth))
        .add_service(InterceptedService::new(reflection, reflection_auth.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, reflection_auth));
    if let Some(admin_auth) = admin_auth {
        let admin = AdminService::new(broker.state.clone()).into_server();
        routes = routes.add_service(InterceptedService::new(admin, admin_auth));
    }
    Ok(routes)
}
