import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Session } from '../../src/app/api';
import { Backoff } from '../../src/app/reconnect';
import { SessionFeed, applyEvent, sortSessions } from '../../src/terminals/feed';
import { FakeTimers, fakeLocation, session, socketFactory } from './fakes';

fakeLocation();

const s = (id: string, extra: Record<string, unknown> = {}) => session(id, extra) as unknown as Session;

test('events update the list: full list, created, updated, ended, removed', () => {
  const map = new Map<string, Session>();
  applyEvent(map, { type: 'sessions', sessions: [s('a'), s('b')] });
  applyEvent(map, { type: 'created', session: s('c') });
  applyEvent(map, { type: 'updated', session: s('a', { name: 'renamed' }) });
  applyEvent(map, { type: 'ended', session: s('b', { status: 'exited', exitCode: 0 }) });
  applyEvent(map, { type: 'removed', session: s('c') });
  assert.deepEqual([...map.keys()], ['a', 'b']);
  assert.equal(map.get('a')?.name, 'renamed');
  assert.equal(map.get('b')?.status, 'exited');
  applyEvent(map, { type: 'sessions', sessions: [s('z')] });
  assert.deepEqual([...map.keys()], ['z'], 'a full list replaces everything');
});

test('running sessions come first, newest first', () => {
  const sorted = sortSessions([
    s('old', { createdAt: 1 }),
    s('gone', { createdAt: 9, status: 'exited' }),
    s('new', { createdAt: 5 }),
  ]);
  assert.deepEqual(
    sorted.map((x) => x.id),
    ['new', 'old', 'gone'],
  );
});

test('the feed follows its socket and reconnects after losing it', () => {
  const timers = new FakeTimers();
  const factory = socketFactory();
  const lists: string[][] = [];
  const feed = new SessionFeed({
    onChange: (sessions) => lists.push(sessions.map((x) => x.id)),
    onState: () => {},
    createSocket: factory.create,
    timers,
    backoff: new Backoff({ random: () => 0 }),
  });
  feed.start();
  assert.equal(factory.last().url, 'ws://127.0.0.1:3000/ws/events');
  factory.last().serverOpen();
  assert.equal(feed.ready, false);
  factory.last().serverText({ type: 'sessions', sessions: [session('a')] });
  factory.last().serverText({ type: 'created', session: session('b', { createdAt: 5000 }) });
  factory.last().serverText('{"type":"nonsense"}');
  assert.equal(feed.ready, true);
  assert.deepEqual(lists, [['a'], ['b', 'a']]);
  factory.last().serverClose(4503);
  assert.equal(feed.state.kind === 'waiting' && feed.state.reason, 'broker');
  timers.advance(500);
  factory.last().serverOpen();
  factory.last().serverText({ type: 'sessions', sessions: [session('b', { createdAt: 5000 })] });
  assert.deepEqual(lists.at(-1), ['b']);
  feed.dispose();
});
