//! Whether the browser is logged in: `GET /api/auth`, public, answered
//! `200` either way so that asking at page load logs no refusal.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `GET /api/auth`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AuthStatus {
    /// Whether the request's cookie (or bearer key) is good.
    pub authenticated: bool,
}

impl From<bool> for AuthStatus {
    fn from(authenticated: bool) -> Self {
        Self { authenticated }
    }
}
