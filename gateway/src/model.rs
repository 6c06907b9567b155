//! The broker's protobuf messages converted into the browser protocol's
//! types ([`crate::protocol`]).

use dispatch_proto::v1::{self as pb, SessionMode, SessionStatus, session_event::Kind};

use crate::protocol::events::EventMessage;
use crate::protocol::sessions::{self as wire, Attention, Session};
use crate::protocol::terminal::ServerMessage;

/// A protobuf mode as the protocol spells it; `None` when unspecified.
pub fn mode(mode: i32) -> Option<wire::SessionMode> {
    match SessionMode::try_from(mode).ok()? {
        SessionMode::Shell => Some(wire::SessionMode::Shell),
        SessionMode::Claude => Some(wire::SessionMode::Claude),
        SessionMode::Unspecified => None,
    }
}

/// Parses a protocol mode name.
pub fn parse_mode(name: &str) -> Option<SessionMode> {
    match name {
        "shell" => Some(SessionMode::Shell),
        "claude" => Some(SessionMode::Claude),
        _ => None,
    }
}

/// A `Session` object.
pub fn session(s: &pb::Session) -> Session {
    let running_mode = mode(s.mode).unwrap_or(wire::SessionMode::Shell);
    let exit = s.exit.as_ref();
    Session {
        id: s.id.clone(),
        name: s.name.clone(),
        mode: running_mode,
        requested_mode: mode(s.requested_mode).unwrap_or(running_mode),
        fallback_reason: non_empty(&s.fallback_reason),
        status: if s.status == SessionStatus::Exited as i32 {
            wire::SessionStatus::Exited
        } else {
            wire::SessionStatus::Running
        },
        cols: s.cols,
        rows: s.rows,
        created_at: s.created_at_ms,
        last_active: s.last_active_ms,
        ended_at: (s.ended_at_ms > 0).then_some(s.ended_at_ms),
        exit_code: exit.and_then(|e| e.code),
        exit_signal: exit.and_then(|e| non_empty(&e.signal)),
        viewers: s.viewers,
        cwd: s.cwd.clone(),
        metadata: s.metadata.clone().into_iter().collect(),
        attention: s.attention.as_ref().map(|a| Attention {
            reason: a.reason.clone(),
            title: a.title.clone(),
            at: a.at_ms,
        }),
    }
}

/// A list of `Session` objects.
pub fn sessions(list: &[pb::Session]) -> Vec<Session> {
    list.iter().map(session).collect()
}

/// The `/ws/events` messages for one broker event.
pub fn session_event(event: &pb::SessionEvent) -> Vec<EventMessage> {
    let kind: fn(Session) -> EventMessage = match Kind::try_from(event.kind) {
        Ok(Kind::Snapshot) => {
            let sessions = sessions(&event.sessions);
            return vec![EventMessage::Sessions { sessions }];
        }
        Ok(Kind::Created) => |session| EventMessage::Created { session },
        Ok(Kind::Updated) => |session| EventMessage::Updated { session },
        Ok(Kind::Ended) => |session| EventMessage::Ended { session },
        Ok(Kind::Removed) => |session| EventMessage::Removed { session },
        Ok(Kind::Unspecified) | Err(_) => return Vec::new(),
    };
    event.sessions.iter().map(|s| kind(session(s))).collect()
}

/// The `exit` terminal message.
pub fn exit(status: &pb::ExitStatus) -> ServerMessage {
    ServerMessage::Exit {
        code: status.code,
        signal: non_empty(&status.signal),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn running_shell() -> pb::Session {
        pb::Session {
            id: "0b6f4a52-1c1d-4c38-9d7a-6f1f4f3b2a10".into(),
            name: "build".into(),
            mode: SessionMode::Shell as i32,
            requested_mode: SessionMode::Claude as i32,
            fallback_reason: "claude is not installed".into(),
            status: SessionStatus::Running as i32,
            cols: 80,
            rows: 24,
            created_at_ms: 1_700_000_000_000,
            last_active_ms: 1_700_000_001_000,
            viewers: 1,
            cwd: "/home/me".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_running_session_has_null_attention_end_and_exit() {
        let wire = serde_json::to_value(session(&running_shell())).unwrap();
        assert_eq!(
            wire,
            json!({
                "id": "0b6f4a52-1c1d-4c38-9d7a-6f1f4f3b2a10",
                "name": "build",
                "mode": "shell",
                "requestedMode": "claude",
                "fallbackReason": "claude is not installed",
                "status": "running",
                "cols": 80,
                "rows": 24,
                "createdAt": 1_700_000_000_000_i64,
                "lastActive": 1_700_000_001_000_i64,
                "endedAt": null,
                "exitCode": null,
                "exitSignal": null,
                "viewers": 1,
                "cwd": "/home/me",
                "metadata": {},
                "attention": null,
            })
        );
    }

    #[test]
    fn an_attention_is_an_object_with_reason_title_and_time() {
        let mut s = running_shell();
        s.attention = Some(pb::Attention {
            reason: "bell".into(),
            title: "Bell".into(),
            at_ms: 5,
        });
        let wire = serde_json::to_value(session(&s)).unwrap();
        assert_eq!(
            wire["attention"],
            json!({"reason": "bell", "title": "Bell", "at": 5})
        );
    }

    #[test]
    fn the_exit_message_has_a_null_signal_after_a_normal_exit() {
        let normal = pb::ExitStatus {
            code: Some(3),
            signal: String::new(),
        };
        let killed = pb::ExitStatus {
            code: None,
            signal: "SIGKILL".into(),
        };
        assert_eq!(
            serde_json::to_string(&exit(&normal)).unwrap(),
            r#"{"type":"exit","code":3,"signal":null}"#
        );
        assert_eq!(
            serde_json::to_string(&exit(&killed)).unwrap(),
            r#"{"type":"exit","code":null,"signal":"SIGKILL"}"#
        );
    }

    #[test]
    fn a_snapshot_is_one_sessions_message_and_updates_one_per_session() {
        let snapshot = pb::SessionEvent {
            kind: Kind::Snapshot as i32,
            sessions: vec![running_shell(), running_shell()],
        };
        let messages = session_event(&snapshot);
        assert_eq!(messages.len(), 1);
        let wire = serde_json::to_value(&messages[0]).unwrap();
        assert_eq!(wire["type"], "sessions");
        assert_eq!(wire["sessions"].as_array().unwrap().len(), 2);

        let updated = pb::SessionEvent {
            kind: Kind::Updated as i32,
            sessions: vec![running_shell()],
        };
        let wire = serde_json::to_value(&session_event(&updated)[0]).unwrap();
        assert_eq!(wire["type"], "updated");
        assert_eq!(wire["session"]["name"], "build");
    }
}
