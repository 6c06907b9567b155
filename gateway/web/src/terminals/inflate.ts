//! Compressed terminal output, the `dispatch.deflate-raw` subprotocol of
//! docs/protocol.md: each binary frame is a flags byte (bit 0: a new DEFLATE
//! stream starts here), the frame's decoded length (big-endian u32), then raw
//! DEFLATE bytes ending in a sync flush. Decoded with the browser's own
//! `DecompressionStream`, one stream at a time.

/** The WebSocket subprotocol that asks the gateway for compressed output. */
export const DEFLATE_PROTOCOL = 'dispatch.deflate-raw';

const NEW_STREAM = 1;
const HEADER_LENGTH = 5;

/** Whether this browser decodes raw DEFLATE natively. */
export function deflateSupported(): boolean {
  try {
    new DecompressionStream('deflate-raw');
    return true;
  } catch {
    return false;
  }
}

/** Decodes a socket's compressed frames, one after another, in order. */
export class FrameInflater {
  private writer: WritableStreamDefaultWriter<BufferSource> | null = null;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private leftover: Uint8Array | null = null;

  /** The bytes one frame decodes to; call again only once this resolved. */
  async inflate(frame: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
    if (frame.length < HEADER_LENGTH) throw new Error('a compressed frame shorter than its header');
    const header = new DataView(frame.buffer, frame.byteOffset, HEADER_LENGTH);
    const length = header.getUint32(1);
    if ((header.getUint8(0) & NEW_STREAM) !== 0 || this.writer === null) this.restart();
    const writer = this.writer as WritableStreamDefaultWriter<BufferSource>;
    const reader = this.reader as ReadableStreamDefaultReader<Uint8Array>;
    writer.write(frame.subarray(HEADER_LENGTH)).catch(() => {});
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      let chunk = this.leftover;
      this.leftover = null;
      if (chunk === null) {
        const { value, done } = await reader.read();
        if (done || value === undefined) throw new Error('the compressed stream ended early');
        chunk = value;
      }
      const take = Math.min(chunk.length, length - filled);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
      if (take < chunk.length) this.leftover = chunk.subarray(take);
    }
    return out;
  }

  /** Drops the stream (the socket is gone). */
  close(): void {
    this.writer?.abort().catch(() => {});
    this.reader?.cancel().catch(() => {});
    this.writer = null;
    this.reader = null;
    this.leftover = null;
  }

  private restart(): void {
    this.close();
    const stream = new DecompressionStream('deflate-raw');
    this.writer = stream.writable.getWriter();
    this.reader = stream.readable.getReader();
  }
}
