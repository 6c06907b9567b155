//! Share links as the browser sees them: the bodies of the owner's share
//! routes and of the share viewer's page (docs/protocol.md, Share links).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `POST /api/sessions/{id}/shares` body.
#[derive(Debug, Default, Deserialize, Serialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateShare {
    /// Seconds until the link expires; at most `SHARE_MAX_TTL_SECS`, which
    /// is also the default.
    #[serde(default)]
    #[ts(optional)]
    pub expires_in_secs: Option<u64>,
}

/// One share link as its owner sees it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, TS)]
#[serde(rename_all = "camelCase")]
pub struct ShareInfo {
    pub id: String,
    pub session_id: String,
    /// Unix epoch milliseconds.
    pub created_at: i64,
    /// Unix epoch milliseconds.
    pub expires_at: i64,
    /// Share viewers connected now.
    pub viewers: u32,
}

/// `POST /api/sessions/{id}/shares` answer: the link, shown once.
#[derive(Debug, Deserialize, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CreatedShare {
    pub share: ShareInfo,
    /// The link relative to the gateway's origin: `/share#<id>.<secret>`.
    /// The secret is in the fragment, which browsers never send.
    pub path: String,
}

/// `GET /api/sessions/{id}/shares` answer.
#[derive(Debug, Deserialize, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ShareList {
    pub shares: Vec<ShareInfo>,
}

/// `POST /api/shares/{share}/open` body: the secret from the link's fragment.
#[derive(Debug, Deserialize, Serialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenShare {
    pub secret: String,
}

/// What a share viewer's page shows: `POST .../open` and `GET /api/shares/{share}`.
#[derive(Debug, Deserialize, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SharedView {
    pub share_id: String,
    /// The shared session's name (may be empty).
    pub session_name: String,
    /// The machine the session runs on (the gateway's host name).
    pub host: String,
    /// Always true: a share viewer never types into the session.
    pub read_only: bool,
    /// Unix epoch milliseconds.
    pub expires_at: i64,
    /// The terminal WebSocket's path.
    pub socket: String,
}
