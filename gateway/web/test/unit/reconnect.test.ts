import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Backoff,
  GATEWAY_LIVENESS,
  ReconnectingSocket,
  decideOnClose,
  type LinkState,
  type Liveness,
  type ProbeResult,
} from '../../src/app/reconnect';
import { FakeTimers, flush, socketFactory } from './fakes';

test('backoff doubles from 0.5 s up to 10 s and starts over after a success', () => {
  const backoff = new Backoff({ random: () => 0 });
  const delays = Array.from({ length: 8 }, () => backoff.next());
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  assert.equal(backoff.attempts, 8);
  backoff.reset();
  assert.equal(backoff.next(), 500);
});

test('backoff jitter only shortens a delay, by at most its fraction', () => {
  const backoff = new Backoff({ random: () => 0.999, jitter: 0.3 });
  const delay = backoff.next();
  assert.ok(delay >= 350 && delay <= 500, String(delay));
  const many = new Backoff();
  for (let i = 0; i < 50; i++) {
    const d = many.next();
    assert.ok(d > 0 && d <= 10000);
  }
});

test('close codes decide between retrying, stopping and asking who we are', () => {
  assert.deepEqual(decideOnClose(1000, true), { stop: 'closed' });
  assert.deepEqual(decideOnClose(1001, true), { wait: 'gateway' });
  assert.deepEqual(decideOnClose(1009, true), { stop: 'protocol' });
  assert.deepEqual(decideOnClose(4400, true), { stop: 'protocol' });
  assert.deepEqual(decideOnClose(4401, true), { stop: 'unauthorized' });
  assert.deepEqual(decideOnClose(4404, true), { stop: 'not-found' });
  assert.deepEqual(decideOnClose(4503, true), { wait: 'broker' });
  assert.deepEqual(decideOnClose(1006, true), { wait: 'network' });
  assert.equal(decideOnClose(1006, false), 'probe');
});

function harness(probe?: () => Promise<ProbeResult>, liveness?: Liveness) {
  const timers = new FakeTimers();
  const factory = socketFactory();
  const states: LinkState[] = [];
  const messages: (string | ArrayBuffer)[] = [];
  const socket = new ReconnectingSocket({
    url: () => `ws://test/${factory.sockets.length}`,
    createSocket: factory.create,
    probe,
    timers,
    backoff: new Backoff({ random: () => 0 }),
    liveness,
    onMessage: (data) => messages.push(data),
    onState: (state) => states.push(state),
  });
  return { timers, factory, states, messages, socket };
}

test('reconnects with growing delays after the connection drops, and resets once healthy', () => {
  const { timers, factory, states, socket } = harness();
  socket.start();
  assert.equal(factory.sockets.length, 1);
  assert.equal(factory.last().binaryType, 'arraybuffer');
  factory.last().serverOpen();
  assert.equal((socket.current as LinkState).kind, 'open');

  factory.last().serverClose(1006);
  assert.deepEqual(states.at(-1), { kind: 'waiting', reason: 'network', retryAt: 500, attempt: 1 });
  timers.advance(499);
  assert.equal(factory.sockets.length, 1, 'not before the delay');
  timers.advance(1);
  assert.equal(factory.sockets.length, 2);
  assert.equal((socket.current as LinkState).kind, 'connecting');

  factory.last().serverOpen();
  factory.last().serverClose(1006);
  const waiting = socket.current as LinkState;
  assert.equal(waiting.kind === 'waiting' && waiting.retryAt - timers.now(), 1000, 'the second delay is longer');
  timers.advance(1000);
  factory.last().serverOpen();
  socket.markHealthy();
  factory.last().serverClose(1001);
  const again = socket.current as LinkState;
  assert.equal(again.kind === 'waiting' && again.reason, 'gateway');
  assert.equal(again.kind === 'waiting' && again.retryAt - timers.now(), 500, 'back to the first delay');
});

test('a normal close stops for good', () => {
  const { timers, factory, socket } = harness();
  socket.start();
  factory.last().serverOpen();
  factory.last().serverClose(1000);
  assert.deepEqual(socket.current, { kind: 'stopped', reason: 'closed', code: 1000 });
  timers.advance(60_000);
  assert.equal(factory.sockets.length, 1);
});

test('revoked credentials and unknown sessions stop; an unreachable broker retries', () => {
  for (const [code, expected] of [
    [4401, 'unauthorized'],
    [4404, 'not-found'],
    [4400, 'protocol'],
  ] as const) {
    const { factory, socket } = harness();
    socket.start();
    factory.last().serverOpen();
    factory.last().serverClose(code);
    assert.deepEqual(socket.current, { kind: 'stopped', reason: expected, code });
  }
  const { timers, factory, socket } = harness();
  socket.start();
  factory.last().serverOpen();
  factory.last().serverClose(4503);
  assert.equal(socket.current.kind === 'waiting' && socket.current.reason, 'broker');
  timers.advance(500);
  assert.equal(factory.sockets.length, 2);
});

test('a socket that never opens is explained by the probe', async () => {
  for (const [result, expected] of [
    ['unauthorized', { kind: 'stopped', reason: 'unauthorized' }],
    ['not-found', { kind: 'stopped', reason: 'not-found' }],
    ['broker', { kind: 'waiting', reason: 'broker' }],
    ['network', { kind: 'waiting', reason: 'network' }],
    ['ok', { kind: 'waiting', reason: 'network' }],
  ] as const) {
    let probes = 0;
    const { factory, socket } = harness(async () => {
      probes++;
      return result;
    });
    socket.start();
    factory.last().serverClose(1006);
    await flush();
    assert.equal(probes, 1);
    const state = socket.current as Record<string, unknown>;
    for (const [key, value] of Object.entries(expected)) assert.equal(state[key], value, `${result}: ${key}`);
  }
});

test('a failing probe counts as a network failure', async () => {
  const { factory, socket } = harness(() => Promise.reject(new Error('offline')));
  socket.start();
  factory.last().serverClose(1006);
  await flush();
  assert.equal(socket.current.kind === 'waiting' && socket.current.reason, 'network');
});

test('retryNow skips the wait; dispose stops everything', () => {
  const { timers, factory, states, socket } = harness();
  socket.start();
  factory.last().serverOpen();
  factory.last().serverClose(1006);
  socket.retryNow();
  assert.equal(factory.sockets.length, 2, 'reconnected at once');
  factory.last().serverOpen();
  assert.equal(socket.send('hello'), true);
  assert.deepEqual(factory.last().sent, ['hello']);
  socket.dispose();
  assert.equal(factory.last().closedWith, 1000);
  assert.deepEqual(states.at(-1), { kind: 'stopped', reason: 'disposed', code: null });
  assert.equal(socket.send('late'), false);
  timers.advance(60_000);
  assert.equal(factory.sockets.length, 2);
});

test('messages and closes from a replaced socket are ignored', () => {
  const { factory, messages, socket } = harness();
  socket.start();
  const first = factory.last();
  first.serverOpen();
  socket.restart();
  const second = factory.last();
  assert.notEqual(first, second);
  first.serverText('stale');
  first.serverClose(1006);
  assert.deepEqual(messages, []);
  assert.equal(socket.current.kind, 'connecting');
  second.serverOpen();
  second.serverText('fresh');
  assert.deepEqual(messages, ['fresh']);
});

const LIVENESS: Liveness = { idleMs: 1000, timeoutMs: 500, connectTimeoutMs: 2000, ping: 'PING', isPong: (data) => data === 'PONG' };

test('a quiet socket is pinged; an answer keeps it, silence replaces it', () => {
  const { timers, factory, messages, states, socket } = harness(undefined, LIVENESS);
  socket.start();
  const first = factory.last();
  first.serverOpen();
  timers.advance(999);
  assert.deepEqual(first.sent, [], 'no ping before a quiet second');
  timers.advance(1);
  assert.deepEqual(first.sent, ['PING']);
  timers.advance(200);
  first.serverText('PONG');
  assert.deepEqual(messages, [], 'the answer is not passed on');
  timers.advance(300);
  assert.equal(socket.current.kind, 'open', 'answered: still open');
  assert.equal(factory.sockets.length, 1);
  timers.advance(699);
  assert.deepEqual(first.sent, ['PING'], 'the next ping waits for a quiet second after the answer');
  timers.advance(1);
  assert.deepEqual(first.sent, ['PING', 'PING']);
  timers.advance(500);
  assert.deepEqual(states.at(-1), { kind: 'waiting', reason: 'network', retryAt: timers.now() + 500, attempt: 1 });
  assert.equal(first.closedWith, 1000, 'the dead socket is closed');
  first.serverText('late');
  first.serverClose(1006);
  assert.deepEqual(messages, [], 'and ignored from then on');
  timers.advance(500);
  assert.equal(factory.sockets.length, 2, 'a new socket after the backoff');
});

test('traffic keeps a socket alive without pings', () => {
  const { timers, factory, socket } = harness(undefined, LIVENESS);
  socket.start();
  factory.last().serverOpen();
  for (let i = 0; i < 20; i++) {
    timers.advance(600);
    factory.last().serverBinary([i]);
  }
  assert.deepEqual(factory.last().sent, []);
  assert.equal(socket.current.kind, 'open');
  assert.equal(factory.sockets.length, 1);
});

test('a socket that does not open in time is given up without a probe', async () => {
  let probes = 0;
  const { timers, factory, socket } = harness(async () => {
    probes++;
    return 'ok';
  }, LIVENESS);
  socket.start();
  timers.advance(1999);
  assert.equal(socket.current.kind, 'connecting');
  timers.advance(1);
  await flush();
  const state = (socket as { current: LinkState }).current;
  assert.deepEqual(state.kind === 'waiting' && state.reason, 'network');
  assert.equal(factory.sockets[0].closedWith, 1000);
  assert.equal(probes, 0);
  timers.advance(500);
  assert.equal(factory.sockets.length, 2);
  factory.last().serverOpen();
  assert.equal(socket.current.kind, 'open');
});

test('checkNow pings at once with its own deadline', () => {
  const { timers, factory, socket } = harness(undefined, LIVENESS);
  socket.start();
  factory.last().serverOpen();
  socket.checkNow(100);
  assert.deepEqual(factory.last().sent, ['PING']);
  socket.checkNow(100);
  assert.deepEqual(factory.last().sent, ['PING'], 'one ping at a time');
  timers.advance(100);
  assert.equal(socket.current.kind === 'waiting' && socket.current.reason, 'network');
});

test('dispose and closes stop the liveness timers', () => {
  const { timers, factory, socket } = harness(undefined, LIVENESS);
  socket.start();
  factory.last().serverOpen();
  factory.last().serverClose(1000);
  assert.equal(timers.count, 0, 'stopped: nothing pending');
  socket.restart();
  factory.last().serverOpen();
  socket.dispose();
  assert.equal(timers.count, 0, 'disposed: nothing pending');
});

test('the gateway liveness pings with {"type":"ping"} and recognises its pong only', () => {
  assert.deepEqual(JSON.parse(GATEWAY_LIVENESS.ping), { type: 'ping' });
  assert.equal(GATEWAY_LIVENESS.isPong('{"type":"pong"}'), true);
  assert.equal(GATEWAY_LIVENESS.isPong('{"type":"ponged"}'), false);
  assert.equal(GATEWAY_LIVENESS.isPong('{"type":"notice","text":"pong"}'), false);
  assert.equal(GATEWAY_LIVENESS.isPong(new TextEncoder().encode('{"type":"pong"}').buffer as ArrayBuffer), false, 'terminal output is never a pong');
});
