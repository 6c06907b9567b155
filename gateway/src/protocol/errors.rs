//! The body of every error answer: `{"error": "..."}` beside a precise HTTP
//! status (see [`crate::error::ApiError`]).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The JSON body of an error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ErrorBody {
    /// A sentence for people.
    pub error: String,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
        }
    }
}
