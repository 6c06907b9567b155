import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashFor, parseHash } from '../../src/app/router';
import { describeState, endedLabel } from '../../src/terminals/status';

test('hash routes name a view and its parameters', () => {
  assert.deepEqual(parseHash('', 'terminals'), { view: 'terminals', params: [] });
  assert.deepEqual(parseHash('#/', 'terminals'), { view: 'terminals', params: [] });
  assert.deepEqual(parseHash('#/terminals/abc', 'terminals'), { view: 'terminals', params: ['abc'] });
  assert.deepEqual(parseHash('#/conversations/p%2Fq/7', 'terminals'), { view: 'conversations', params: ['p/q', '7'] });
  assert.deepEqual(parseHash('#/x/%E0%A4%A', 'terminals'), { view: 'x', params: ['%E0%A4%A'] });
  assert.equal(hashFor('terminals', 'a/b'), '#/terminals/a%2Fb');
});

test('connection states read as people expect', () => {
  assert.equal(describeState({ kind: 'attached' }, 0).state, 'connected');
  assert.equal(describeState({ kind: 'connecting', attempt: 0 }, 0).label, 'Connecting…');
  assert.equal(describeState({ kind: 'connecting', attempt: 0 }, 0, true).label, 'Reconnecting…');
  const broker = describeState({ kind: 'waiting', reason: 'broker', retryAt: 3000, attempt: 2 }, 500);
  assert.equal(broker.state, 'broker-unreachable');
  assert.equal(broker.label, 'Broker unreachable, retrying in 3 s');
  assert.equal(describeState({ kind: 'ended', code: 0, signal: null }, 0).label, 'Session ended (exit code 0)');
  assert.equal(endedLabel(null, 'SIGKILL'), 'Session ended (signal SIGKILL)');
  assert.equal(describeState({ kind: 'stopped', reason: 'not-found', code: 4404 }, 0).state, 'not-found');
});
