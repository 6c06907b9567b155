//! Message size limits shared by both ends: the broker's largest accepted
//! gRPC message (`BROKER_MAX_MESSAGE_BYTES`) and the largest terminal input
//! that fits in one, so the gateway refuses what the broker would.

use prost::Message;

use crate::v1::{AttachRequest, attach_request};

/// Default largest gRPC message the broker decodes, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

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
    fn largest_input_fits_exactly() {
        for max in [4096, 65_536, MAX_MESSAGE_BYTES, 3 << 20] {
            let n = max_input_bytes(max);
            assert!(encoded(n) <= max, "{max}");
            assert!(encoded(n + 1) > max, "{max}");
        }
    }
}
