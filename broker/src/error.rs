//! Errors at the RPC boundary and their gRPC status codes.

use tonic::Status;

/// What can go wrong with a session request.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("invalid session id {0:?}: expected a UUID")]
    InvalidId(String),
    #[error("session {0} not found")]
    NotFound(String),
    #[error("session limit reached ({0} sessions)")]
    TooManySessions(usize),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("session {0} has ended")]
    Ended(String),
    #[error("broker is shutting down")]
    ShuttingDown,
    #[error("broker is draining: no new sessions")]
    Draining,
    #[error("could not start the session: {0}")]
    Spawn(String),
    #[error("PTY error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<SessionError> for Status {
    fn from(err: SessionError) -> Self {
        let message = err.to_string();
        match err {
            SessionError::InvalidId(_) | SessionError::InvalidArgument(_) => {
                Status::invalid_argument(message)
            }
            SessionError::NotFound(_) => Status::not_found(message),
            SessionError::TooManySessions(_) => Status::resource_exhausted(message),
            SessionError::Ended(_) => Status::failed_precondition(message),
            SessionError::ShuttingDown | SessionError::Draining => Status::unavailable(message),
            SessionError::Spawn(_) | SessionError::Io(_) => Status::internal(message),
        }
    }
}
