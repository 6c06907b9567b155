//! The body posted to the notification webhook (`NOTIFY_WEBHOOK_URL`) when
//! a session starts needing its user. Not read by the browser, so not in
//! the generated TypeScript.

use serde::{Deserialize, Serialize};

/// One notification, with the message under the keys common services read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// Always `dispatch`.
    pub title: String,
    pub message: String,
    /// The same as `message`.
    pub text: String,
    /// The session's name.
    pub session: String,
    /// The attention's reason (`bell`, `notification`, ...).
    pub reason: String,
}
