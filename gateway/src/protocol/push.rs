//! Web Push as the browser sees it: the bodies and answers of the
//! `/api/push/` routes, and the payload a push carries (encrypted) to the
//! service worker.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `GET /api/push/key`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PushKey {
    /// The VAPID public key (uncompressed P-256, base64url): the
    /// `applicationServerKey` of `PushManager.subscribe`.
    pub public_key: String,
}

/// `POST /api/push/subscriptions`'s body: what `PushSubscription.toJSON()`
/// gives.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    /// Ignored: push services tell an expired subscription by 404 or 410.
    #[serde(default)]
    pub expiration_time: Option<f64>,
}

/// A subscription's keys (base64url).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// `POST /api/push/subscriptions`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Subscribed {
    /// How many subscriptions the gateway holds now.
    pub subscriptions: usize,
}

/// `DELETE /api/push/subscriptions`'s body.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Unsubscription {
    pub endpoint: String,
}

/// What a push carries (encrypted) to the service worker: the session and
/// why it needs its user, never anything from its terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PushMessage {
    /// The session's id.
    pub session: String,
    /// The session's name (may be empty).
    pub name: String,
    /// `permission`, `input`, `bell` or `notification`.
    pub reason: String,
}
