//! Web Push (RFC 8030) to the browsers and installed apps that turned it on:
//! the gateway's VAPID key ([`keys`]), the subscriptions it keeps
//! ([`store`]), which endpoints it may reach ([`endpoint`]), the routes under
//! `/api/push/`, and the push sent each time a session needs its user
//! (called by [`crate::notify`], which decides when). A push's payload is
//! encrypted for its subscription (RFC 8291, `aes128gcm`), signed for with
//! VAPID (RFC 8292), and carries only the session's id, name and the reason
//! ([`PushMessage`]). A subscription the push service no longer knows
//! (404 or 410) is removed.

pub mod endpoint;
pub mod keys;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::builder::BoolishValueParser;
use warp::http::{StatusCode, header};
use warp::reply::Response;

use crate::error::{ApiError, empty_response, json_response};
use crate::protocol::push::{NewSubscription, PushKey, PushMessage, Subscribed, Unsubscription};
use crate::router::ApiRequest;
use crate::state::AppState;
use crate::state_dir::StateDir;
use keys::VapidKey;
use store::{Added, Store, Stored};

/// Time allowed for one push request.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Web Push settings.
#[derive(clap::Args, Clone, Debug)]
pub struct PushConfig {
    /// Most Web Push subscriptions kept (one per browser or installed app that turned
    /// push on); a new one beyond is refused with 409.
    #[arg(long, env = "PUSH_MAX_SUBSCRIPTIONS", default_value_t = 32)]
    pub push_max_subscriptions: usize,

    /// Also accept push endpoints over plain http and on loopback, private and link-local
    /// addresses (a push service on the local network, tests). Off: the gateway POSTs only
    /// to https endpoints on public addresses, since browsers hand it those URLs.
    #[arg(long, env = "PUSH_ALLOW_PRIVATE_ENDPOINTS", default_value = "false", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub push_allow_private_endpoints: bool,

    /// Whom a push service may contact about this gateway's pushes: the VAPID subject,
    /// a `mailto:` or `https:` URL.
    #[arg(
        long,
        env = "PUSH_CONTACT",
        default_value = "mailto:dispatch@localhost"
    )]
    pub push_contact: String,

    /// Seconds a push service keeps a push for a device that is offline (its `TTL`).
    #[arg(long, env = "PUSH_TTL_SECS", default_value_t = 3600)]
    pub push_ttl_secs: u64,
}

/// The gateway's Web Push: its key, its subscriptions, its HTTP client.
#[derive(Debug)]
pub struct Push {
    key: VapidKey,
    store: Store,
    client: reqwest::Client,
    config: PushConfig,
}

impl Push {
    /// The key and subscriptions kept in `dir` (the key made on first use).
    pub fn open(config: &PushConfig, dir: &std::path::Path) -> anyhow::Result<Self> {
        let contact = &config.push_contact;
        if !(contact.starts_with("mailto:") || contact.starts_with("https:")) {
            anyhow::bail!("ERROR: PUSH_CONTACT must be a mailto: or https: URL, not {contact:?}");
        }
        let dir = StateDir::open(dir)?;
        let key = VapidKey::load_or_create(&dir)?;
        let store = Store::load(dir.clone(), config.push_max_subscriptions).with_context(|| {
            format!("ERROR: reading {}", dir.path().join(store::FILE).display())
        })?;
        Ok(Self {
            key,
            store,
            client: http_client(config.push_allow_private_endpoints)?,
            config: config.clone(),
        })
    }

    /// The VAPID public key (base64url).
    pub fn public_key(&self) -> &str {
        self.key.public()
    }

    /// The subscriptions held.
    pub fn subscriptions(&self) -> Vec<Stored> {
        self.store.all()
    }

    /// Checks and stores a browser's subscription.
    pub fn subscribe(&self, body: NewSubscription) -> Result<Subscribed, ApiError> {
        let stored = self.check(body)?;
        match self.store.add(stored).map_err(storage_error)? {
            Added::New | Added::Replaced => Ok(Subscribed {
                subscriptions: self.store.len(),
            }),
            Added::Full { max } => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the gateway holds {max} push subscriptions already (PUSH_MAX_SUBSCRIPTIONS); turn push off in another browser first"
                ),
            )),
        }
    }

    fn check(&self, body: NewSubscription) -> Result<Stored, ApiError> {
        endpoint::check(&body.endpoint, self.config.push_allow_private_endpoints)
            .map_err(ApiError::bad_request)?;
        let p256dh = decode(&body.keys.p256dh)
            .filter(|bytes| bytes.len() == 65)
            .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok());
        if p256dh.is_none() {
            return Err(ApiError::bad_request(
                "keys.p256dh must be an uncompressed P-256 public key in base64url",
            ));
        }
        if decode(&body.keys.auth).is_none_or(|bytes| bytes.len() != 16) {
            return Err(ApiError::bad_request(
                "keys.auth must be 16 bytes in base64url",
            ));
        }
        Ok(Stored {
            endpoint: body.endpoint,
            p256dh: body.keys.p256dh.trim_end_matches('=').to_owned(),
            auth: body.keys.auth.trim_end_matches('=').to_owned(),
            created_ms: now_ms(),
        })
    }

    /// Forgets the subscription of an endpoint; whether there was one.
    pub fn unsubscribe(&self, endpoint: &str) -> Result<bool, ApiError> {
        self.store.remove(endpoint).map_err(storage_error)
    }

    /// Sends `message` to every subscription, in the background.
    pub fn send(self: &Arc<Self>, message: &PushMessage) {
        if self.store.is_empty() {
            return;
        }
        let urgency = match message.reason.as_str() {
            "permission" | "input" => "high",
            _ => "normal",
        };
        let body = serde_json::to_vec(message).unwrap_or_default();
        for subscription in self.store.all() {
            let push = self.clone();
            let body = body.clone();
            tokio::spawn(async move { push.deliver(&subscription, body, urgency).await });
        }
    }

    /// One push to one subscription; removes it when the service says it is gone.
    async fn deliver(&self, subscription: &Stored, body: Vec<u8>, urgency: &'static str) {
        let allow_private = self.config.push_allow_private_endpoints;
        let Ok(url) = endpoint::check(&subscription.endpoint, allow_private) else {
            tracing::warn!("a stored push endpoint is no longer allowed; not pushing to it");
            return;
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let Some(payload) = encrypt(subscription, body) else {
            tracing::warn!(%host, "cannot encrypt a push for a stored subscription");
            return;
        };
        let audience = url.origin().ascii_serialization();
        let request = self
            .client
            .post(url)
            .timeout(PUSH_TIMEOUT)
            .header("TTL", self.config.push_ttl_secs)
            .header("Urgency", urgency)
            .header(header::CONTENT_ENCODING, "aes128gcm")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(
                header::AUTHORIZATION,
                self.key.authorization(&audience, &self.config.push_contact),
            )
            .body(payload);
        match request.send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) if matches!(response.status().as_u16(), 404 | 410) => {
                tracing::info!(%host, status = %response.status(), "push subscription gone; removed");
                if let Err(e) = self.store.remove(&subscription.endpoint) {
                    tracing::warn!(error = %e, "cannot save the push subscriptions");
                }
            }
            Ok(response) => {
                tracing::warn!(%host, status = %response.status(), "the push service refused a push")
            }
            // Without the URL, which is the subscription's capability.
            Err(e) => {
                tracing::warn!(%host, error = %e.without_url(), "the push service is unreachable")
            }
        }
    }
}

/// The payload encrypted for `subscription` (RFC 8291).
fn encrypt(subscription: &Stored, body: Vec<u8>) -> Option<Vec<u8>> {
    let public = p256::PublicKey::from_sec1_bytes(&decode(&subscription.p256dh)?).ok()?;
    let auth = decode(&subscription.auth).filter(|auth| auth.len() == 16)?;
    let auth = web_push_native::Auth::clone_from_slice(&auth);
    web_push_native::encrypt(body, &public, &auth).ok()
}

/// Base64url, padded or not.
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn storage_error(error: std::io::Error) -> ApiError {
    tracing::error!(%error, "cannot save the push subscriptions");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "cannot save the push subscriptions in STATE_DIR",
    )
}

/// The client of push requests: no redirects, no proxy, and (unless private
/// endpoints are allowed) only public addresses ([`endpoint::PublicOnly`]).
fn http_client(allow_private: bool) -> anyhow::Result<reqwest::Client> {
    // The first provider installed wins; another one already there is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("dispatch-gateway/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(PUSH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(endpoint::PublicOnly));
    }
    Ok(builder.build()?)
}

/// `GET /api/push/key`.
pub fn key(state: &AppState) -> Result<Response, ApiError> {
    let key = PushKey {
        public_key: state.push.public_key().to_owned(),
    };
    Ok(json_response(StatusCode::OK, &to_json(&key)))
}

/// `POST /api/push/subscriptions`.
pub fn subscribe(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let body: NewSubscription = request.json()?;
    let subscribed = state.push.subscribe(body)?;
    Ok(json_response(StatusCode::CREATED, &to_json(&subscribed)))
}

/// `DELETE /api/push/subscriptions`.
pub fn unsubscribe(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let body: Unsubscription = request.json()?;
    match state.push.unsubscribe(&body.endpoint)? {
        true => Ok(empty_response(StatusCode::NO_CONTENT)),
        false => Err(ApiError::not_found(
            "no push subscription has that endpoint",
        )),
    }
}

fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
