//! Raw WebSocket frames (RFC 6455, section 5.2) for tests that must send what
//! a conforming client library refuses to: unmasked frames, reserved bits
//! and opcodes, oversized or fragmented control frames, invalid UTF-8.

/// The masking key every encoded frame uses.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame: `first` is the first header byte as sent (FIN, RSV1-3 and the
/// opcode, e.g. `0x81` for a final text frame), `payload` unmasked; with
/// `masked` the payload is masked as a client must.
pub fn encode(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut frame = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => frame.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        frame.extend_from_slice(payload);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_sizes_as_rfc_6455_says() {
        // RFC 6455 5.7: a masked "Hello" with key 37 fa 21 3d.
        assert_eq!(
            encode(0x81, b"Hello", true),
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        assert_eq!(encode(0x81, b"Hello", false), b"\x81\x05Hello");
        let long = encode(0x82, &[0; 256], false);
        assert_eq!(&long[..4], [0x82, 126, 0x01, 0x00]);
    }
}
