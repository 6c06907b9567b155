import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createDeflateRaw, type DeflateRaw } from 'node:zlib';
import { Backoff } from '../../src/app/reconnect';
import { TerminalConnection } from '../../src/terminals/connection';
import { DEFLATE_PROTOCOL, FrameInflater } from '../../src/terminals/inflate';
import { FakeTimers, fakeLocation, flush, session, socketFactory } from './fakes';

fakeLocation();

/** A gateway-side compressor: one raw DEFLATE stream, sync-flushed per frame. */
class Deflater {
  private stream: DeflateRaw | null = null;

  async frame(text: string): Promise<Uint8Array<ArrayBuffer>> {
    const fresh = this.stream === null;
    const stream = (this.stream ??= createDeflateRaw());
    const raw = new TextEncoder().encode(text);
    const chunks: Buffer[] = [];
    const collect = (chunk: Buffer) => chunks.push(chunk);
    stream.on('data', collect);
    stream.write(raw);
    await new Promise<void>((resolve) => stream.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    await flush();
    stream.off('data', collect);
    const body = Buffer.concat(chunks);
    const frame = new Uint8Array(5 + body.length);
    const header = new DataView(frame.buffer);
    header.setUint8(0, fresh ? 1 : 0);
    header.setUint32(1, raw.length);
    frame.set(body, 5);
    return frame;
  }

  release(): void {
    this.stream?.close();
    this.stream = null;
  }
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

test('frames of one stream decode in turn, and a new stream starts over', async () => {
  const deflater = new Deflater();
  const inflater = new FrameInflater();
  const first = 'line one\r\n'.repeat(500);
  assert.equal(text(await inflater.inflate(await deflater.frame(first))), first);
  assert.equal(text(await inflater.inflate(await deflater.frame('line two\r\n'))), 'line two\r\n');
  deflater.release();
  assert.equal(text(await inflater.inflate(await deflater.frame('again\r\n'))), 'again\r\n');
});

test('a compressed socket handles every message in arrival order and acknowledges decoded bytes', async () => {
  const timers = new FakeTimers();
  const factory = socketFactory();
  const events: string[] = [];
  const connection = new TerminalConnection({
    sessionId: 's1',
    size: () => ({ cols: 80, rows: 24 }),
    sink: {
      attached: () => events.push('attached'),
      reset: (cols, rows) => events.push(`reset ${cols}x${rows}`),
      output: (bytes, done) => {
        events.push(`output ${text(bytes)}`);
        done();
      },
      session: () => {},
      notice: (note) => events.push(`notice ${note}`),
      refused: (message) => events.push(`refused ${message}`),
      state: () => {},
      droppedInput: () => {},
    },
    createSocket: (url) => Object.assign(factory.create(url), { protocol: DEFLATE_PROTOCOL }),
    probe: async () => 'ok',
    timers,
    backoff: new Backoff({ random: () => 0 }),
  });
  connection.start();
  const socket = factory.last();
  socket.serverOpen();
  assert.equal(connection.compressed, true);
  const deflater = new Deflater();
  socket.serverText({ type: 'attached', session: session('s1') });
  socket.serverBinary(await deflater.frame('before'));
  socket.serverText({ type: 'notice', text: 'between' });
  socket.serverBinary(await deflater.frame(' after'));
  socket.serverText({ type: 'reset', cols: 80, rows: 24 });
  for (let i = 0; i < 200 && events.length < 5; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(events, ['attached', 'output before', 'notice between', 'output  after', 'reset 80x24']);
  assert.equal(connection.ackStats.written, 'before after'.length);
});
