//! The egress ledger of `GET /api/sessions/{id}/egress`: the hosts a
//! session's tunnels reached through the gateway's egress proxy and the
//! ones it was refused.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Whether the proxy let a connection through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum EgressDecision {
    Allowed,
    Refused,
}

/// One destination of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EgressHost {
    pub host: String,
    pub port: u16,
    pub decision: EgressDecision,
    /// The last refusal's reason; `null` when allowed.
    pub reason: Option<String>,
    /// Connections.
    pub count: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Unix epoch milliseconds of the last connection (or of the last tunnel's end).
    pub last_at: i64,
}

/// `GET /api/sessions/{id}/egress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EgressReport {
    pub session_id: String,
    /// Whether the egress proxy is on (`EGRESS_LISTEN`).
    pub enabled: bool,
    /// The most recent first.
    pub hosts: Vec<EgressHost>,
}
