//! A session's proxy credentials: `Proxy-Authorization: Basic
//! base64(<session-id>:<secret>)`, checked against the key derived from the
//! broker token (constant time, no shared state; see
//! [`dispatch_proto::egress`]), then the broker is asked whether that
//! session still runs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dispatch_proto::egress::EgressKey;
use dispatch_proto::v1::{GetSessionRequest, SessionStatus};

use super::audit::{Refusal, Refused};
use crate::broker::{Broker, RequestId};

/// The session id in a `Proxy-Authorization` header whose secret checks out.
pub fn authenticate(key: &EgressKey, header: Option<&[u8]>) -> Result<String, Refusal> {
    let header = header.ok_or(Refusal::CredentialsRequired)?;
    let header = std::str::from_utf8(header).map_err(|_| Refusal::BadCredentials)?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(Refusal::BadCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::BadCredentials);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Refusal::BadCredentials)?;
    let decoded = String::from_utf8(decoded).map_err(|_| Refusal::BadCredentials)?;
    let (session, secret) = decoded.split_once(':').ok_or(Refusal::BadCredentials)?;
    let canonical = uuid::Uuid::parse_str(session)
        .map(|id| id.to_string())
        .map_err(|_| Refusal::BadCredentials)?;
    if canonical != session || !key.verify(session, secret) {
        return Err(Refusal::BadCredentials);
    }
    Ok(canonical)
}

/// `Ok` when the broker says `session` is running.
pub async fn check_running(broker: &Broker, session: &str) -> Result<(), Refused> {
    let id = RequestId::generate();
    let call = broker.request(
        GetSessionRequest {
            id: session.to_owned(),
        },
        &id,
    );
    match broker.sessions().get_session(call).await {
        Ok(found) if found.get_ref().status() == SessionStatus::Running => Ok(()),
        Ok(_) => Err(Refused::new(Refusal::SessionNotRunning, "it has ended")),
        Err(status) if status.code() == tonic::Code::NotFound => {
            Err(Refused::new(Refusal::SessionNotRunning, "unknown session"))
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), "egress: the broker did not answer a session check");
            Err(Refusal::BrokerUnreachable.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01";

    fn basic(user_pass: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(user_pass)).into_bytes()
    }

    #[test]
    fn checks_the_session_secret() {
        let key = EgressKey::derive("token");
        let good = basic(&format!("{ID}:{}", key.secret(ID)));
        assert_eq!(authenticate(&key, Some(&good)).unwrap(), ID);
        assert_eq!(authenticate(&key, None), Err(Refusal::CredentialsRequired));
        let other = "0f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01";
        for bad in [
            basic(&format!("{other}:{}", key.secret(ID))),
            basic(&format!("{ID}:wrong")),
            basic(&format!(
                "{}:{}",
                ID.to_uppercase(),
                key.secret(&ID.to_uppercase())
            )),
            basic(ID),
            format!("Bearer {}", key.secret(ID)).into_bytes(),
            b"Basic !!!".to_vec(),
        ] {
            assert_eq!(
                authenticate(&key, Some(&bad)),
                Err(Refusal::BadCredentials),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        let other_key = EgressKey::derive("other-token");
        assert_eq!(
            authenticate(&other_key, Some(&good)),
            Err(Refusal::BadCredentials)
        );
    }
}
