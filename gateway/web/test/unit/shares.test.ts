import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFragment, untilTime } from '../../src/shares/link';

test("a share link's fragment gives its id and secret", () => {
  const id = 'AbCdEfGhIjKl-_12';
  assert.deepEqual(parseFragment(`#${id}.s3cret-value`), { shareId: id, secret: 's3cret-value' });
  assert.deepEqual(parseFragment(`#${id}`), { shareId: id, secret: null });
  assert.equal(parseFragment('#short.secret'), null);
  assert.equal(parseFragment('#../../etc/passwd.x'), null);
  assert.equal(parseFragment(''), null);
});

test('expiries read as a time to come', () => {
  const now = 1_800_000_000_000;
  assert.equal(untilTime(now - 1, now), 'now');
  assert.match(untilTime(now + 30_000, now), /30/);
  assert.match(untilTime(now + 3 * 3_600_000, now), /3/);
  assert.match(untilTime(now + 2 * 86_400_000, now), /2/);
});
