import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionText, needingAttention, titleWithCount } from '../../src/app/attention';
import type { Session } from '../../src/app/api';

function session(id: string, status: Session['status'], attention: Session['attention']): Session {
  return {
    id,
    name: id,
    mode: 'shell',
    requestedMode: 'shell',
    fallbackReason: null,
    status,
    cols: 80,
    rows: 24,
    createdAt: 1,
    lastActive: 1,
    endedAt: null,
    exitCode: null,
    exitSignal: null,
    viewers: 0,
    cwd: '/',
    metadata: {},
    attention,
  };
}

test('the title counts running sessions that need attention, and only once', () => {
  const sessions = [
    session('a', 'running', { reason: 'bell', title: 'Bell', at: 5 }),
    session('b', 'running', null),
    session('c', 'exited', { reason: 'permission', title: 'x', at: 6 }),
    session('d', 'running', { reason: 'permission', title: 'Claude Code: permission_prompt', at: 7 }),
  ];
  const count = needingAttention(sessions).length;
  assert.equal(count, 2);
  assert.equal(titleWithCount('build · dispatch', count), '(2) build · dispatch');
  assert.equal(titleWithCount('(2) build · dispatch', 1), '(1) build · dispatch');
  assert.equal(titleWithCount('(1) build · dispatch', 0), 'build · dispatch');
});

test('reasons read as words', () => {
  assert.equal(attentionText('permission'), 'needs a permission decision');
  assert.equal(attentionText('input'), 'waits for input');
  assert.equal(attentionText('bell'), 'rang the bell');
  assert.equal(attentionText('anything else'), 'sent a notification');
});
