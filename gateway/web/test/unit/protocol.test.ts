import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProtocolError,
  decodeEventMessage,
  decodeServerMessage,
  encodeBinaryInput,
  encodeClientMessage,
  encodeInput,
} from '../../src/terminals/protocol';
import { session } from './fakes';

test('decodes every gateway control message', () => {
  assert.deepEqual(decodeServerMessage(JSON.stringify({ type: 'attached', session: session('a') })), {
    type: 'attached',
    session: session('a'),
  });
  assert.deepEqual(decodeServerMessage('{"type":"reset","cols":120,"rows":40}'), { type: 'reset', cols: 120, rows: 40 });
  assert.equal(decodeServerMessage(JSON.stringify({ type: 'session', session: session('b', { name: 'x' }) })).type, 'session');
  assert.deepEqual(decodeServerMessage('{"type":"notice","text":"hi"}'), { type: 'notice', text: 'hi' });
  assert.deepEqual(decodeServerMessage('{"type":"exit","code":3,"signal":null}'), { type: 'exit', code: 3, signal: null });
  assert.deepEqual(decodeServerMessage('{"type":"exit","code":null,"signal":"SIGKILL"}'), {
    type: 'exit',
    code: null,
    signal: 'SIGKILL',
  });
  assert.deepEqual(decodeServerMessage('{"type":"error","message":"bad"}'), { type: 'error', message: 'bad' });
});

test('refuses malformed gateway messages with a ProtocolError', () => {
  const bad = [
    'not json',
    '[]',
    '{"type":"launch"}',
    '{"type":"reset","cols":0,"rows":24}',
    '{"type":"reset","cols":80,"rows":1001}',
    '{"type":"reset","cols":"80","rows":24}',
    '{"type":"reset","cols":80.5,"rows":24}',
    '{"type":"attached"}',
    '{"type":"attached","session":{"name":"no id"}}',
    '{"type":"session","session":{"id":"a","mode":"shell","status":"running","createdAt":"yesterday","lastActive":1}}',
    '{"type":"notice"}',
    '{"type":"exit","code":"1"}',
    '{"type":"error","message":42}',
  ];
  for (const text of bad) assert.throws(() => decodeServerMessage(text), ProtocolError, text);
});

test('decodes the session list events', () => {
  const list = decodeEventMessage(JSON.stringify({ type: 'sessions', sessions: [session('a'), session('b')] }));
  assert.equal(list.type, 'sessions');
  assert.equal(list.type === 'sessions' && list.sessions.length, 2);
  for (const type of ['created', 'updated', 'ended', 'removed']) {
    const event = decodeEventMessage(JSON.stringify({ type, session: session('c') }));
    assert.equal(event.type, type);
  }
  assert.throws(() => decodeEventMessage('{"type":"sessions","sessions":{}}'), ProtocolError);
  assert.throws(() => decodeEventMessage('{"type":"deleted","session":{}}'), ProtocolError);
});

test('encodes client control messages, clamping sizes to 1..=1000', () => {
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'resize', cols: 120, rows: 40 })), { type: 'resize', cols: 120, rows: 40 });
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'resize', cols: 120, rows: 40, fit: true })), { type: 'resize', cols: 120, rows: 40, fit: true });
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'resize', cols: 0, rows: 5000 })), { type: 'resize', cols: 1, rows: 1000 });
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'resize', cols: Number.NaN, rows: 10.6 })), { type: 'resize', cols: 1, rows: 11 });
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'ack', bytes: 131072 })), { type: 'ack', bytes: 131072 });
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'detach' })), { type: 'detach' });
  assert.deepEqual(JSON.parse(encodeClientMessage({ type: 'end' })), { type: 'end' });
  assert.throws(() => encodeClientMessage({ type: 'ack', bytes: -1 }), RangeError);
  assert.throws(() => encodeClientMessage({ type: 'ack', bytes: 1.5 }), RangeError);
});

test('terminal input travels as UTF-8 bytes, binary input byte for byte', () => {
  assert.deepEqual([...encodeInput('echo é\r')], [101, 99, 104, 111, 32, 0xc3, 0xa9, 13]);
  assert.deepEqual([...encodeInput('🙂')], [0xf0, 0x9f, 0x99, 0x82]);
  assert.deepEqual([...encodeBinaryInput('\x1b[M\xff\x80')], [0x1b, 0x5b, 0x4d, 0xff, 0x80]);
});
