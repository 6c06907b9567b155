//! Identifiers: [`SessionId`], a session's UUID (as clients name it), and
//! [`ViewerId`], one attachment of a session.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::SessionError;

/// A session id (a UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SessionId {
    type Err = SessionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| SessionError::InvalidId(s.chars().take(64).collect()))
    }
}

/// Identifies one attachment of a session: the n-th viewer it ever had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViewerId(u64);

impl ViewerId {
    /// The id after this one.
    pub(super) fn next(self) -> Self {
        Self(self.0 + 1)
    }

    pub(super) fn first() -> Self {
        Self(0)
    }
}
