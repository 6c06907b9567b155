//! Sessions as the browser sees them: the `Session` object of the REST
//! routes and both WebSockets, and the bodies of the session routes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    Shell,
    Claude,
}

/// Whether a session's process is still alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Running,
    Exited,
}

/// Why a session needs its user; cleared when someone types into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Attention {
    /// `bell`, `notification`, ...
    pub reason: String,
    /// The notification's text, or `Bell`.
    pub title: String,
    /// Unix epoch milliseconds.
    pub at: i64,
}

/// A session (timestamps in Unix epoch milliseconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// A UUID.
    pub id: String,
    pub name: String,
    /// The mode that actually runs.
    pub mode: SessionMode,
    pub requested_mode: SessionMode,
    /// Why `mode` differs from `requestedMode`.
    pub fallback_reason: Option<String>,
    pub status: SessionStatus,
    pub cols: u32,
    pub rows: u32,
    pub created_at: i64,
    /// The last input or output.
    pub last_active: i64,
    pub ended_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    /// Attached terminal sockets.
    pub viewers: u32,
    /// The working directory it started in.
    pub cwd: String,
    pub metadata: BTreeMap<String, String>,
    /// Set while the session needs its user.
    pub attention: Option<Attention>,
}

/// `GET /api/sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

/// `POST /api/sessions`; every field may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct CreateSessionRequest {
    /// The broker's default when left out. Checked by the handler, which
    /// names the modes in its refusal.
    #[ts(as = "Option<SessionMode>")]
    pub mode: Option<String>,
    /// Clamped to the largest dimension; the broker's default when left out.
    pub cols: Option<u32>,
    pub rows: Option<u32>,
    pub name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Arguments for `claude` (claude mode).
    pub claude_args: Option<Vec<String>>,
    /// The working directory; it must exist.
    pub cwd: Option<String>,
}

/// `PATCH /api/sessions/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RenameSessionRequest {
    pub name: String,
}
