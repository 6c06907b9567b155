//! The JSON shapes of docs/protocol.md, converted from the broker's protobuf
//! messages.

use dispatch_proto::v1::{self as pb, SessionMode, SessionStatus, session_event::Kind};
use serde_json::{Value, json};

/// `mode` as the protocol spells it.
pub fn mode_name(mode: i32) -> Option<&'static str> {
    match SessionMode::try_from(mode).ok()? {
        SessionMode::Shell => Some("shell"),
        SessionMode::Claude => Some("claude"),
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
pub fn session(s: &pb::Session) -> Value {
    let exited = s.status == SessionStatus::Exited as i32;
    let exit = s.exit.as_ref();
    json!({
        "id": s.id,
        "name": s.name,
        "mode": mode_name(s.mode).unwrap_or("shell"),
        "requestedMode": mode_name(s.requested_mode).or(mode_name(s.mode)).unwrap_or("shell"),
        "fallbackReason": if s.fallback_reason.is_empty() { Value::Null } else { json!(s.fallback_reason) },
        "status": if exited { "exited" } else { "running" },
        "cols": s.cols,
        "rows": s.rows,
        "createdAt": s.created_at_ms,
        "lastActive": s.last_active_ms,
        "endedAt": if s.ended_at_ms > 0 { json!(s.ended_at_ms) } else { Value::Null },
        "exitCode": exit.and_then(|e| e.code),
        "exitSignal": exit.map(|e| e.signal.as_str()).filter(|s| !s.is_empty()),
        "viewers": s.viewers,
        "cwd": s.cwd,
        "metadata": s.metadata,
        "attention": s.attention.as_ref().map(|a| json!({
            "reason": a.reason,
            "title": a.title,
            "at": a.at_ms,
        })),
    })
}

/// A list of `Session` objects.
pub fn sessions(list: &[pb::Session]) -> Value {
    Value::Array(list.iter().map(session).collect())
}

/// The `/ws/events` messages for one broker event.
pub fn session_event(event: &pb::SessionEvent) -> Vec<Value> {
    let kind = match Kind::try_from(event.kind).unwrap_or(Kind::Unspecified) {
        Kind::Snapshot => {
            return vec![json!({"type": "sessions", "sessions": sessions(&event.sessions)})];
        }
        Kind::Created => "created",
        Kind::Updated => "updated",
        Kind::Ended => "ended",
        Kind::Removed => "removed",
        Kind::Unspecified => return Vec::new(),
    };
    event
        .sessions
        .iter()
        .map(|s| json!({"type": kind, "session": session(s)}))
        .collect()
}

/// The `exit` terminal message.
pub fn exit(status: &pb::ExitStatus) -> Value {
    json!({
        "type": "exit",
        "code": status.code,
        "signal": if status.signal.is_empty() { Value::Null } else { json!(status.signal) },
    })
}
