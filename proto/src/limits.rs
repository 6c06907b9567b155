//! Limits shared by the broker, the gateway and the web UI, defined once:
//! the broker's largest accepted gRPC message (`BROKER_MAX_MESSAGE_BYTES`)
//! and the largest terminal input that fits in one, so the gateway refuses
//! what the broker would; the longest session name; the terminal size range;
//! what a conversation id may be.
//! The web UI reads the last two from `gateway/web/src/generated/limits.ts`,
//! written from [`typescript`] (a gateway test fails when it is stale).

use prost::Message;

use crate::v1::{AttachRequest, attach_request};

/// Default largest gRPC message the broker decodes, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Longest session name, in characters (Unicode scalar values).
pub const MAX_SESSION_NAME_CHARS: usize = 128;

/// Longest conversation or agent id, in bytes.
pub const MAX_CONVERSATION_ID_BYTES: usize = 128;

/// Whether `id` can name a conversation or a subagent's transcript: at most
/// [`MAX_CONVERSATION_ID_BYTES`] of `[A-Za-z0-9_.-]`, not starting with a
/// dot (so never `.` or `..`, and never a hidden file's name).
pub fn is_conversation_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CONVERSATION_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.')
}

/// Largest terminal width or height, in cells: sizes are clamped to
/// `1..=MAX_TERMINAL_DIMENSION`.
pub const MAX_TERMINAL_DIMENSION: u16 = 1000;

/// Clamps a requested terminal dimension to `1..=MAX_TERMINAL_DIMENSION`,
/// mapping 0 (not given) to `default`.
pub fn clamp_dimension(value: u32, default: u16) -> u16 {
    if value == 0 {
        return default;
    }
    value.clamp(1, u32::from(MAX_TERMINAL_DIMENSION)) as u16
}

/// The limits the web UI needs, as a TypeScript module.
pub fn typescript() -> String {
    format!(
        "// Generated from proto/src/limits.rs; do not edit. Regenerate with\n\
         // DISPATCH_UPDATE_GENERATED=1 cargo nextest run -p dispatch-gateway --test generated\n\
         \n\
         /** Longest session name, in characters (Unicode code points; the gateway and broker refuse longer). */\n\
         export const MAX_SESSION_NAME_CHARS = {MAX_SESSION_NAME_CHARS};\n\
         \n\
         /** Largest terminal width or height, in cells (sizes are clamped to 1..=this). */\n\
         export const MAX_TERMINAL_DIMENSION = {MAX_TERMINAL_DIMENSION};\n"
    )
}

/// The largest terminal input (one `AttachRequest.input`) whose encoded
/// request is at most `max_message` bytes.
pub fn max_input_bytes(max_message: usize) -> usize {
    let empty = AttachRequest {
        kind: Some(attach_request::Kind::Input(Default::default())),
    };
    // The field key; the rest is the length varint and the bytes.
    let key = empty.encoded_len() - 1;
    let fits = |n: usize| key + prost::encoding::encoded_len_varint(n as u64) + n <= max_message;
    let mut n = max_message.saturating_sub(key + 10);
    while fits(n + 1) {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(n: usize) -> usize {
        AttachRequest {
            kind: Some(attach_request::Kind::Input(vec![0u8; n].into())),
        }
        .encoded_len()
    }

    #[test]
    fn conversation_ids() {
        assert!(is_conversation_id("7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01"));
        assert!(is_conversation_id("agent-a1b2.c_3"));
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(!is_conversation_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn dimensions_are_clamped() {
        assert_eq!(clamp_dimension(0, 80), 80);
        assert_eq!(clamp_dimension(1, 80), 1);
        assert_eq!(clamp_dimension(5000, 80), MAX_TERMINAL_DIMENSION);
    }

    #[test]
    fn largest_input_fits_exactly() {
        for max in [4096, 65_536, MAX_MESSAGE_BYTES, 3 << 20] {
            let n = max_input_bytes(max);
            assert!(encoded(n) <= max, "{max}");
            assert!(encoded(n + 1) > max, "{max}");
        }
    }
}
