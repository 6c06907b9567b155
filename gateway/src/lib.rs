//! `dispatch-gateway`: the internet-facing, unprivileged half of dispatch.
//! HTTP and WebSockets (docs/protocol.md), authentication, the embedded web
//! UI, and the gRPC client of `dispatch-broker`, which owns every PTY.
//!
//! [`Gateway::new`] builds the gateway from its [`Config`] (starting or
//! finding its local broker when `BROKER_URL` is unset); [`Gateway::serve`] serves a
//! pre-bound listener until [`Gateway::shutdown`].

pub mod api;
pub mod assets;
pub mod auth;
pub mod binary;
pub mod broker;
pub mod config;
pub mod conversations;
pub mod egress;
pub mod error;
pub mod events;
pub mod files;
pub mod healthcheck;
pub mod local_broker;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod origin;
pub mod protocol;
pub mod public_url;
pub mod push;
pub mod ratelimit;
pub mod revocations;
pub mod router;
pub mod routes;
pub mod server;
pub mod shares;
pub mod state;
pub mod state_dir;
pub mod terminal;
pub mod tunnel;
pub mod usage;
pub mod ws;

use std::sync::Arc;

/// The one way to take a standard lock (shared with the broker).
use dispatch_proto::sync;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use binary::Cli;
pub use broker::Broker;
pub use config::Config;
pub use public_url::PublicUrl;
pub use state::AppState;

/// The gateway: shared state, and the local broker child when it runs one.
#[derive(Debug)]
pub struct Gateway {
    state: Arc<AppState>,
    local_broker: Option<local_broker::LocalBroker>,
    egress: Option<egress::EgressProxy>,
}

impl Gateway {
    /// Checks the configuration and links to the broker (lazily: the broker
    /// may come up later). Without `BROKER_URL`, starts a `dispatch-broker`
    /// child. Must run inside a tokio runtime.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        if config.enable_tunnel {
            tunnel_config(&config, tunnel::Destination::dial(config.listen_addr()))?;
        }
        let auth = auth::Auth::from_config(&config)?;
        let push = push::Push::open(&config.push, &config.required_state_dir()?)?;
        let shutdown = CancellationToken::new();
        let mut egress = egress::EgressProxy::bind(&config.egress)?;
        let egress_url = egress.as_ref().map(egress::EgressProxy::local_url);
        let (broker, local_broker) = match &config.broker_url {
            Some(url) => (
                Broker::connect_lazy(url, config.broker_token.as_deref())?,
                None,
            ),
            None => {
                let options = local_broker::LocalOptions {
                    bin: config.broker_bin.clone(),
                    state_dir: config.required_state_dir()?,
                    egress_proxy_url: egress_url.transpose()?,
                    idle_exit_secs: config.local_broker_idle_exit_secs,
                };
                let local = local_broker::LocalBroker::start(options, shutdown.clone())?;
                (
                    Broker::connect_lazy(&local.url, Some(&local.token))?,
                    Some(local),
                )
            }
        };
        let state = Arc::new(AppState::new(config, auth, broker, push, shutdown));
        if let Some(proxy) = &mut egress {
            proxy.use_broker_token(
                local_broker
                    .as_ref()
                    .map_or(state.config.broker_token.as_deref(), |local| {
                        Some(local.token.as_str())
                    }),
            )?;
        }
        Ok(Self {
            state,
            local_broker,
            egress,
        })
    }

    /// The egress proxy's address, when `EGRESS_LISTEN` is set.
    pub fn egress_addr(&self) -> Option<std::net::SocketAddr> {
        self.egress
            .as_ref()
            .and_then(|proxy| proxy.local_addr().ok())
    }

    /// The shared state (for hooks and tests).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The public URL state that `/public-url` serves.
    pub fn public_url(&self) -> PublicUrl {
        self.state.public_url.clone()
    }

    /// Starts a graceful shutdown: stop accepting, close WebSockets with 1001,
    /// let go of the local broker (which keeps running with its sessions).
    pub fn shutdown(&self) {
        self.state.shutdown.cancel();
    }

    /// A token cancelled on shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Starts the tunnel task (the hook for `tunnel::run`): it publishes the
    /// URL in the shared [`PublicUrl`] and stops on shutdown.
    fn start_tunnel<F>(
        &self,
        server: &server::ConnectionServer<F>,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>>
    where
        F: warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        let server = server.clone();
        let serve: tunnel::ServeConnection = Arc::new(move |stream, peer| {
            let server = server.clone();
            Box::pin(async move { server.serve_connection(stream, peer).await })
        });
        let config = tunnel_config(&self.state.config, tunnel::Destination::Serve(serve))?;
        let public_url = self.state.public_url.clone();
        Ok(tokio::spawn(tunnel::run(
            config,
            move |url| public_url.set(url),
            self.state.shutdown.clone(),
        )))
    }

    /// Serves `listener` until shutdown; starts the tunnel when enabled.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        let local_addr = listener.local_addr()?;
        let server = server::ConnectionServer::new(
            router::filter(self.state.clone()),
            &self.state.config,
            &self.state.metrics,
        );
        let tunnel = match self.state.config.enable_tunnel {
            true => Some(self.start_tunnel(&server)?),
            false => None,
        };
        let egress = (self.egress).map(|proxy| tokio::spawn(proxy.serve(self.state.clone())));
        tokio::spawn(notify::run(self.state.clone()));
        tracing::info!(%local_addr, ui_built = assets::ui_built(), "serving");
        server.run(listener, self.state.shutdown.clone()).await;
        self.state.sockets.close();
        if tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.state.sockets.wait(),
        )
        .await
        .is_err()
        {
            tracing::warn!("some WebSockets were still closing after 10 s");
        }
        if let Some(tunnel) = tunnel {
            let _ = tunnel.await;
        }
        if let Some(egress) = egress {
            let _ = egress.await;
        }
        if let Some(local) = self.local_broker {
            local.stopped().await;
        }
        Ok(())
    }
}

/// The tunnel's settings from `LT_HOST`, `LT_SUBDOMAIN` and the listening address.
fn tunnel_config(
    config: &Config,
    destination: tunnel::Destination,
) -> anyhow::Result<tunnel::TunnelConfig> {
    let subdomain =
        tunnel::Subdomain::parse_optional(config.lt_subdomain.as_deref().unwrap_or(""))?;
    let server = config
        .lt_host
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(tunnel::DEFAULT_SERVER);
    Ok(tunnel::TunnelConfig::new(server, subdomain, destination)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn tunnel_server(args: &[&str]) -> String {
        let mut all = vec!["dispatch-gateway", "--enable-tunnel"];
        all.extend_from_slice(args);
        let config = Cli::try_parse_from(all).unwrap().config;
        let local = tunnel::Destination::dial("127.0.0.1:3000".parse().unwrap());
        tunnel_config(&config, local).unwrap().server().to_string()
    }

    #[test]
    fn tunnel_server_defaults_to_the_public_service() {
        assert_eq!(tunnel_server(&[]), "https://localtunnel.me/");
        // An empty LT_HOST (as an env file may hold) means the default.
        assert_eq!(tunnel_server(&["--lt-host", ""]), "https://localtunnel.me/");
        assert_eq!(
            tunnel_server(&["--lt-host", "http://127.0.0.1:9000"]),
            "http://127.0.0.1:9000/"
        );
    }
}
