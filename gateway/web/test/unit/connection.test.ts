import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/app/reconnect';
import type { Session } from '../../src/app/api';
import { TerminalConnection, type TerminalSink, type TerminalState } from '../../src/terminals/connection';
import { FakeTimers, fakeLocation, session, socketFactory } from './fakes';

fakeLocation();

interface Recorded {
  events: string[];
  output: Uint8Array[];
  pendingWrites: (() => void)[];
  states: TerminalState[];
  dropped: number[];
}

function harness(size: { cols: number; rows: number } | null = { cols: 100, rows: 30 }) {
  const timers = new FakeTimers();
  const factory = socketFactory();
  const recorded: Recorded = { events: [], output: [], pendingWrites: [], states: [], dropped: [] };
  const sink: TerminalSink = {
    attached: (s: Session) => recorded.events.push(`attached ${s.id}`),
    reset: (cols, rows) => recorded.events.push(`reset ${cols}x${rows}`),
    output: (bytes, done) => {
      recorded.output.push(bytes);
      recorded.pendingWrites.push(done);
    },
    session: (s) => recorded.events.push(`session ${s.name}`),
    notice: (text) => recorded.events.push(`notice ${text}`),
    refused: (message) => recorded.events.push(`refused ${message}`),
    state: (state) => recorded.states.push(state),
    droppedInput: (count) => recorded.dropped.push(count),
  };
  const connection = new TerminalConnection({
    sessionId: 'abc/1',
    size: () => size,
    sink,
    createSocket: factory.create,
    probe: async () => 'ok',
    timers,
    backoff: new Backoff({ random: () => 0 }),
  });
  const writeAll = () => {
    for (const done of recorded.pendingWrites.splice(0)) done();
  };
  return { timers, factory, recorded, connection, writeAll };
}

test('attaches with the viewer size in the URL and passes control messages on', () => {
  const { factory, recorded, connection } = harness();
  connection.start();
  assert.equal(factory.last().url, 'ws://127.0.0.1:3000/ws/sessions/abc%2F1?cols=100&rows=30');
  factory.last().serverOpen();
  assert.equal(connection.input(new Uint8Array([1])), false, 'no input before attached');
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  factory.last().serverText({ type: 'reset', cols: 100, rows: 30 });
  factory.last().serverText({ type: 'session', session: session('abc/1', { name: 'renamed' }) });
  factory.last().serverText({ type: 'notice', text: 'maintenance' });
  factory.last().serverText({ type: 'error', message: 'bad resize' });
  factory.last().serverText('{"type":"bogus"}');
  factory.last().serverText({ type: 'pong' });
  assert.deepEqual(recorded.events.slice(0, 5), ['attached abc/1', 'reset 100x30', 'session renamed', 'notice maintenance', 'refused bad resize']);
  assert.match(recorded.events[5], /^refused unreadable message/);
  assert.equal(recorded.events.length, 6, 'a pong is not passed on');
  assert.equal(connection.state.kind, 'attached');
});

test('without a known size the URL has no query', () => {
  const { factory, connection } = harness(null);
  connection.start();
  assert.equal(factory.last().url, 'ws://127.0.0.1:3000/ws/sessions/abc%2F1');
});

test('input, resize and end are sent in the protocol format', () => {
  const { factory, connection } = harness();
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  assert.equal(connection.input(new TextEncoder().encode('ls\r')), true);
  assert.equal(connection.resize(120, 0), true);
  assert.equal(connection.end(), true);
  const sent = factory.last().sent;
  assert.deepEqual([...(sent[0] as Uint8Array)], [108, 115, 13]);
  assert.deepEqual(factory.last().controls, [{ type: 'resize', cols: 120, rows: 1 }, { type: 'end' }]);
});

test('output is acknowledged once written to the emulator', () => {
  const { timers, factory, recorded, connection, writeAll } = harness();
  connection.start();
  const socket = factory.last();
  socket.serverOpen();
  socket.serverText({ type: 'attached', session: session('abc/1') });
  socket.serverBinary([104, 105]);
  socket.serverBinary(new Uint8Array(40 * 1024));
  assert.deepEqual([...recorded.output[0]], [104, 105]);
  assert.deepEqual(socket.controls, [], 'nothing acknowledged before the emulator wrote it');
  writeAll();
  assert.deepEqual(socket.controls, [{ type: 'ack', bytes: 2 + 40 * 1024 }], 'a full step is acknowledged at once');
  socket.serverBinary([1, 2, 3]);
  writeAll();
  timers.advance(100);
  assert.deepEqual(socket.controls.at(-1), { type: 'ack', bytes: 2 + 40 * 1024 + 3 }, 'the rest after a short delay');
  assert.deepEqual(connection.ackStats, { received: 40965, written: 40965, acked: 40965 });
});

test('acknowledgements count per socket: a reconnection starts from zero', () => {
  const { timers, factory, connection, writeAll } = harness();
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  factory.last().serverBinary([1, 2, 3, 4]);
  factory.last().serverClose(1006);
  writeAll();
  timers.advance(100);
  assert.deepEqual(factory.sockets[0].controls, [], 'a write finishing after the socket dropped is not acknowledged');
  timers.advance(1000);
  assert.equal(factory.sockets.length, 2, 'reconnected');
  const second = factory.last();
  second.serverOpen();
  second.serverText({ type: 'attached', session: session('abc/1') });
  second.serverBinary([9, 9]);
  writeAll();
  timers.advance(100);
  assert.deepEqual(second.controls, [{ type: 'ack', bytes: 2 }]);
});

test('an exit ends the session: the closing socket changes nothing and no reconnection follows', () => {
  const { timers, factory, recorded, connection } = harness();
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  factory.last().serverText({ type: 'exit', code: 2, signal: null });
  assert.deepEqual(connection.state, { kind: 'ended', code: 2, signal: null });
  factory.last().serverClose(1000);
  factory.last().serverClose(1006);
  timers.advance(60_000);
  assert.equal(factory.sockets.length, 1);
  assert.deepEqual(recorded.states.at(-1), { kind: 'ended', code: 2, signal: null });
  assert.equal(connection.input(new Uint8Array([1])), false);
});

test('the broker going away is reported and retried until it is back', () => {
  const { timers, factory, connection } = harness();
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  factory.last().serverClose(4503);
  assert.equal(connection.state.kind === 'waiting' && connection.state.reason, 'broker');
  timers.advance(500);
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  assert.equal(connection.state.kind, 'attached');
});

test('detach says so and closes the socket', () => {
  const { factory, connection } = harness();
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  connection.detach();
  assert.deepEqual(factory.last().controls, [{ type: 'detach' }]);
  assert.equal(factory.last().closedWith, 1000);
});

test('input while the link is down is dropped, not sent later, and reported until attached again', () => {
  const { timers, factory, recorded, connection } = harness();
  const typed = (text: string) => connection.input(new TextEncoder().encode(text));
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  assert.equal(typed('ok\r'), true);
  assert.deepEqual(recorded.dropped, [], 'nothing dropped while attached');

  factory.last().serverClose(1006);
  assert.equal(connection.state.kind, 'waiting');
  assert.equal(typed('rm -rf build\r'), false);
  assert.equal(typed('\x1b[A'), false);
  assert.deepEqual(recorded.dropped, [1, 2], 'each dropped input is reported at once');
  assert.equal(connection.droppedInputs, 2);

  timers.advance(1000);
  const second = factory.last();
  assert.notEqual(second, factory.sockets[0], 'reconnecting');
  second.serverOpen();
  assert.equal(typed('x'), false, 'open but not attached yet: still dropped');
  assert.deepEqual(recorded.dropped, [1, 2, 3]);
  second.serverText({ type: 'attached', session: session('abc/1') });
  assert.deepEqual(recorded.dropped, [1, 2, 3, 0], 'cleared once attached again');
  assert.equal(connection.droppedInputs, 0);
  assert.deepEqual(second.sent, [], 'nothing typed while down is replayed');
  assert.equal(typed('y'), true);
  assert.deepEqual([...(second.sent[0] as Uint8Array)], [121]);
});

test('input given to a socket that is already closing is reported as dropped', () => {
  const { factory, recorded, connection } = harness();
  connection.start();
  factory.last().serverOpen();
  factory.last().serverText({ type: 'attached', session: session('abc/1') });
  factory.last().closing();
  assert.equal(connection.input(new Uint8Array([1])), false);
  assert.deepEqual(factory.last().sent, [], 'a closing socket would discard it');
  assert.deepEqual(recorded.dropped, [1]);
});

test('after the session ended input is refused without a connection warning, and a pending one is cleared', () => {
  const { factory, recorded, connection } = harness();
  connection.start();
  assert.equal(connection.input(new Uint8Array([1])), false, 'typed while connecting');
  assert.deepEqual(recorded.dropped, [1]);
  factory.last().serverOpen();
  factory.last().serverText({ type: 'exit', code: 0, signal: null });
  assert.deepEqual(recorded.dropped, [1, 0], 'the session ended: nothing to reconnect to');
  assert.equal(connection.input(new Uint8Array([2])), false);
  assert.deepEqual(recorded.dropped, [1, 0]);
});
