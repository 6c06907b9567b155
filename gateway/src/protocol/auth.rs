//! Logging in, and the public routes' small answers.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `POST /api/login`: answered `204` with the login cookie, or `401`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LoginRequest {
    /// The access key.
    pub key: String,
}

/// `GET /public-url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PublicUrl {
    /// The tunnel's public URL; `null` while there is none.
    pub url: Option<String>,
}

/// `GET /healthz` (`ok`) and `GET /readyz` (`ready`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Health {
    pub status: String,
}

impl Health {
    pub fn new(status: &str) -> Self {
        Self {
            status: status.to_owned(),
        }
    }
}
