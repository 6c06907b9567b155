//! Bearer-token authentication for the broker's gRPC services.
//!
//! [`BearerAuth`] is a tonic interceptor: wrap any service with
//! `InterceptedService::new(service, auth.clone())` (or the generated
//! `XServer::with_interceptor`). Each service may have its own token.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` in constant time.
///
/// An empty token disables the check; [`crate::Config::validate`] allows
/// that only on a Unix socket, which the broker creates with mode 0600.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Arc<[u8]>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth").finish_non_exhaustive()
    }
}

impl BearerAuth {
    pub fn new(token: &str) -> Self {
        Self {
            expected: Arc::from(token.as_bytes()),
        }
    }

    /// Whether `header` (the raw `authorization` value) carries the token.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        if self.expected.is_empty() {
            return true;
        }
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        presented.ct_eq(&self.expected).into()
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        if self.accepts(header) {
            Ok(request)
        } else if header.is_none() {
            Err(Status::unauthenticated(
                "missing authorization: Bearer token",
            ))
        } else {
            Err(Status::unauthenticated("invalid token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_token() {
        let auth = BearerAuth::new("s3cret");
        assert!(auth.accepts(Some(b"Bearer s3cret")));
        assert!(!auth.accepts(Some(b"Bearer s3cre")));
        assert!(!auth.accepts(Some(b"Bearer s3cret2")));
        assert!(!auth.accepts(Some(b"bearer s3cret")));
        assert!(!auth.accepts(Some(b"s3cret")));
        assert!(!auth.accepts(None));
    }

    #[test]
    fn empty_token_disables_the_check() {
        assert!(BearerAuth::new("").accepts(None));
    }
}
