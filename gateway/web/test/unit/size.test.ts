import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PtySizeFollower } from '../../src/terminals/size';

const size = (cols: number, rows: number) => ({ cols, rows });

test('announcements are followed while this viewer awaits nothing', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  assert.equal(follower.session(size(120, 38)), true);
  assert.equal(follower.session(size(80, 24)), true, 'another viewer took the PTY');
  assert.equal(follower.session(size(100, 30)), true);
});

test('announcements sent before a request was applied are stale until its answer', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  follower.requested(size(73, 25));
  follower.requested(size(64, 23));
  follower.requested(size(64, 21));
  assert.equal(follower.session(size(73, 25)), false, 'answers an older request');
  assert.equal(follower.session(size(64, 23)), false, 'answers an older request');
  assert.equal(follower.session(size(64, 21)), true, 'the answer to the latest request');
  assert.equal(follower.session(size(90, 30)), true, 'after the answer, another viewer is followed again');
});

test('a size requested again is answered by its own announcement, not by the earlier one', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  for (const [cols, rows] of [[107, 35], [107, 33], [96, 30], [107, 33], [107, 35], [120, 38]]) {
    follower.requested(size(cols, rows));
  }
  assert.equal(follower.session(size(107, 35)), false, 'answers the first request');
  assert.equal(follower.session(size(107, 33)), false);
  assert.equal(follower.session(size(96, 30)), false);
  assert.equal(follower.session(size(107, 33)), false);
  assert.equal(follower.session(size(107, 35)), false);
  assert.equal(follower.session(size(120, 38)), true, 'answers the latest request');
});

test('a request repeating the one before is not announced again, nor awaited', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  follower.requested(size(100, 30));
  follower.requested(size(100, 30));
  assert.equal(follower.session(size(100, 30)), true);
  assert.equal(follower.session(size(80, 24)), true, 'another viewer is followed at once');
});

test('another viewer changing the size between two requests is not followed', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  follower.requested(size(100, 30));
  follower.requested(size(90, 28));
  assert.equal(follower.session(size(100, 30)), false);
  assert.equal(follower.session(size(80, 24)), false, 'applied before the latest request');
  assert.equal(follower.session(size(90, 28)), true);
});

test('a request for the size last announced awaits nothing (the broker will not announce it again)', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  assert.equal(follower.session(size(80, 24)), true);
  follower.requested(size(80, 24));
  assert.equal(follower.session(size(100, 30)), true, 'another viewer is followed at once');
});

test('before any announcement, a request is awaited', () => {
  const follower = new PtySizeFollower();
  follower.requested(size(100, 30));
  assert.equal(follower.session(size(80, 24)), false);
  assert.equal(follower.session(size(100, 30)), true);
});

test('a reset ends the wait; a new socket forgets the old one', () => {
  const follower = new PtySizeFollower();
  follower.reset(size(120, 38));
  follower.requested(size(100, 30));
  follower.reset(size(90, 28));
  assert.equal(follower.session(size(90, 28)), true, 'followed after the reset');

  follower.requested(size(100, 30));
  follower.restart();
  assert.equal(follower.session(size(80, 24)), true, 'nothing awaited on a new socket');
});
