//! Compressed terminal output (the `dispatch.deflate-raw` subprotocol of
//! docs/protocol.md): one raw DEFLATE stream (RFC 1951) per socket, flushed
//! at the end of every frame (a sync flush), so each frame's bytes decode as
//! soon as it arrives, with browsers' native `DecompressionStream`.
//!
//! Frame layout: one flags byte ([`NEW_STREAM`]: a fresh DEFLATE stream
//! starts here; the decoder must start over), the frame's decompressed
//! length as a big-endian u32, then the DEFLATE bytes.
//!
//! Memory: a DEFLATE context takes a few hundred KiB, so it exists only while
//! output flows; [`Deflater::release`] drops it when the socket goes idle
//! and the next frame starts a new stream.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// The WebSocket subprotocol a client offers to get compressed output.
pub const PROTOCOL: &str = "dispatch.deflate-raw";
/// Flags bit: this frame starts a new DEFLATE stream.
pub const NEW_STREAM: u8 = 1;
/// Bytes before the DEFLATE data of a frame.
pub const HEADER_LEN: usize = 5;
/// DEFLATE level: fast, with dynamic Huffman codes (level 1 keeps to the
/// fixed codes and leaves digits-heavy output at half its size).
const LEVEL: u32 = 3;
/// Room for a sync flush's marker and the blocks' headers.
const FLUSH_SLACK: usize = 64;

/// One socket's compressor, held only while output flows.
#[derive(Default)]
pub struct Deflater {
    context: Option<Compress>,
}

impl Deflater {
    /// The compressed frame for `raw`.
    pub fn frame(&mut self, raw: &[u8]) -> Bytes {
        let flags = if self.context.is_none() {
            NEW_STREAM
        } else {
            0
        };
        let context = self
            .context
            .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false));
        let mut out = Vec::with_capacity(HEADER_LEN + raw.len() + FLUSH_SLACK);
        out.push(flags);
        out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        deflate_into(context, raw, &mut out);
        Bytes::from(out)
    }

    /// Drops the context (an idle socket); the next frame starts a new stream.
    pub fn release(&mut self) {
        self.context = None;
    }

    /// Whether a context is held.
    pub fn is_active(&self) -> bool {
        self.context.is_some()
    }
}

/// Compresses all of `raw` with a sync flush at its end, appending to `out`.
/// The flush is complete once the compressor leaves output room unused.
fn deflate_into(context: &mut Compress, raw: &[u8], out: &mut Vec<u8>) {
    let start = context.total_in();
    loop {
        if out.capacity() - out.len() < FLUSH_SLACK {
            out.reserve(raw.len() / 2 + FLUSH_SLACK);
        }
        let consumed = (context.total_in() - start) as usize;
        if let Err(err) = context.compress_vec(&raw[consumed..], out, FlushCompress::Sync) {
            unreachable!("raw DEFLATE of a byte slice cannot fail: {err}");
        }
        let all_in = (context.total_in() - start) as usize == raw.len();
        if all_in && out.len() < out.capacity() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut decoder = flate2::read::DeflateDecoder::new(stream);
        // A sync-flushed stream has no end marker: read what decodes.
        let _ = decoder.read_to_end(&mut out);
        out
    }

    #[test]
    fn frames_decode_to_the_same_bytes_in_one_stream() {
        let mut deflater = Deflater::default();
        let text: Vec<u8> = (1..60_000)
            .flat_map(|n| format!("{n}\r\n").into_bytes())
            .collect();
        let (a, b) = text.split_at(text.len() / 2);
        let (first, second) = (deflater.frame(a), deflater.frame(b));
        assert_eq!(first[0], NEW_STREAM);
        assert_eq!(second[0], 0);
        assert_eq!(
            u32::from_be_bytes(first[1..5].try_into().unwrap()) as usize,
            a.len()
        );
        assert!(first.len() + second.len() < text.len() / 3);
        let mut stream = first[HEADER_LEN..].to_vec();
        assert_eq!(inflate(&stream), a);
        stream.extend_from_slice(&second[HEADER_LEN..]);
        assert_eq!(inflate(&stream), text);
    }

    #[test]
    fn incompressible_bytes_fit_and_a_released_context_starts_a_new_stream() {
        let mut deflater = Deflater::default();
        let noise: Vec<u8> = (0..40_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let frame = deflater.frame(&noise);
        assert_eq!(inflate(&frame[HEADER_LEN..]), noise);
        deflater.release();
        assert!(!deflater.is_active());
        let again = deflater.frame(b"hello");
        assert_eq!(again[0], NEW_STREAM);
        assert_eq!(inflate(&again[HEADER_LEN..]), b"hello");
    }
}
