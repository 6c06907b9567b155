//! The session-list WebSocket's messages (`/ws/events`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::sessions::Session;

/// A message the gateway sends on the session-list socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventMessage {
    /// The full list: first, and again after a client that fell behind catches up.
    Sessions {
        sessions: Vec<Session>,
    },
    Created {
        session: Session,
    },
    Updated {
        session: Session,
    },
    Ended {
        session: Session,
    },
    Removed {
        session: Session,
    },
    /// The answer to `ping`.
    Pong,
}

/// A message the browser sends on the session-list socket; anything else is ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventClientMessage {
    /// Liveness check, answered with `pong`.
    Ping,
}
