//! The Files service's errors and the gRPC status each one maps to: a bad
//! path is `INVALID_ARGUMENT`, a way out of the session's directory or a
//! special file `PERMISSION_DENIED`, a missing one `NOT_FOUND`.

use tonic::Status;

use crate::error::bounded;

/// Why a file call failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Io(String),
}

impl FileError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// The error of a failed system call on `what` (a path shown to the
    /// caller, relative to the session's directory).
    pub fn from_errno(err: rustix::io::Errno, what: &str) -> Self {
        use rustix::io::Errno;
        let what = if what.is_empty() {
            "the session's directory".to_owned()
        } else {
            format!("{what:?}")
        };
        match err {
            Errno::NOENT => Self::NotFound(format!("{what} does not exist")),
            Errno::XDEV | Errno::LOOP => Self::Forbidden(format!(
                "{what} leads outside the session's directory (through a symlink)"
            )),
            Errno::ACCESS | Errno::PERM => Self::Forbidden(format!("{what}: permission denied")),
            Errno::NOTDIR => Self::Conflict(format!("{what}: a component is not a directory")),
            Errno::ISDIR => Self::Conflict(format!("{what} is a directory")),
            Errno::EXIST | Errno::NOTEMPTY => Self::Exists(format!("{what} already exists")),
            Errno::NAMETOOLONG => Self::Invalid(format!("{what}: name too long")),
            other => Self::Io(format!("{what}: {}", std::io::Error::from(other))),
        }
    }
}

impl From<FileError> for Status {
    fn from(err: FileError) -> Self {
        let message = bounded(err.to_string());
        match err {
            FileError::Invalid(_) => Status::invalid_argument(message),
            FileError::Forbidden(_) => Status::permission_denied(message),
            FileError::NotFound(_) => Status::not_found(message),
            FileError::Conflict(_) => Status::failed_precondition(message),
            FileError::Exists(_) => Status::already_exists(message),
            FileError::Io(_) => Status::internal(message),
        }
    }
}
