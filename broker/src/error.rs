//! Errors at the RPC boundary and their gRPC status codes, and the bounds
//! on what of a request an error message may repeat.

use tonic::Status;

/// Characters of a client's value that an error message repeats.
const ECHO_CHARS: usize = 64;
/// Longest status message sent (it travels in an HTTP/2 header, which
/// clients refuse beyond a few KiB).
const MAX_STATUS_MESSAGE: usize = 512;

/// A client-supplied value quoted for an error message: Rust-escaped (no
/// raw control characters) and cut after [`ECHO_CHARS`] characters, with
/// its full length, so that no request is echoed whole into a status.
pub fn quote(value: &str) -> String {
    let chars = value.chars().count();
    if chars <= ECHO_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(ECHO_CHARS).collect();
    format!("{head:?}… ({chars} characters)")
}

/// `message` cut to [`MAX_STATUS_MESSAGE`] bytes (on a character boundary).
pub fn bounded(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

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
        let message = bounded(err.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_cuts() {
        assert_eq!(quote("a\x1b]0;x\x07"), r#""a\u{1b}]0;x\u{7}""#);
        let long = "é".repeat(1000);
        let quoted = quote(&long);
        assert!(quoted.starts_with(&format!("\"{}\"…", "é".repeat(ECHO_CHARS))));
        assert!(quoted.ends_with("(1000 characters)"));
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        let message = bounded("日".repeat(1000));
        assert!(message.len() <= MAX_STATUS_MESSAGE);
        assert!(message.ends_with('…'));
        assert_eq!(bounded("short".into()), "short");
    }
}
