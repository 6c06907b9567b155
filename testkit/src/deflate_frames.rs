//! A decoder of the gateway's compressed terminal frames (the
//! `dispatch.deflate-raw` subprotocol of docs/protocol.md): a flags byte
//! (bit 0: a new raw DEFLATE stream starts), the decoded length as a
//! big-endian u32, then DEFLATE bytes ending in a sync flush.

use flate2::{Decompress, FlushDecompress};

/// The WebSocket subprotocol that asks for compressed output.
pub const PROTOCOL: &str = "dispatch.deflate-raw";

/// Decodes one socket's frames in order.
pub struct Inflater {
    context: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Self {
            context: Decompress::new(false),
        }
    }
}

impl Inflater {
    /// The bytes `frame` decodes to; an error if it is not a whole,
    /// well-formed frame of the stream, or decodes to another length than
    /// its header says.
    pub fn frame(&mut self, frame: &[u8]) -> Result<Vec<u8>, String> {
        if frame.len() < 5 {
            return Err(format!(
                "a {}-byte frame is shorter than its header",
                frame.len()
            ));
        }
        if frame[0] & 1 == 1 {
            self.context = Decompress::new(false);
        }
        let length = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        let mut out = Vec::with_capacity(length + 1);
        let before = self.context.total_in();
        self.context
            .decompress_vec(&frame[5..], &mut out, FlushDecompress::Sync)
            .map_err(|e| format!("not raw DEFLATE: {e}"))?;
        let consumed = (self.context.total_in() - before) as usize;
        if consumed != frame.len() - 5 || out.len() != length {
            return Err(format!(
                "decoded {consumed} of {} bytes to {} bytes, {length} announced",
                frame.len() - 5,
                out.len()
            ));
        }
        Ok(out)
    }
}
