import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base64UrlBytes } from '../../src/app/push';

test('the VAPID key decodes from base64url, with or without padding', () => {
  const bytes = Uint8Array.from({ length: 65 }, (_, i) => (i * 37 + 250) % 256);
  const text = Buffer.from(bytes).toString('base64url');
  assert.ok(text.includes('-') || text.includes('_'), 'the sample uses the URL alphabet');
  assert.deepEqual([...base64UrlBytes(text)], [...bytes]);
  assert.deepEqual([...base64UrlBytes(`${text}===`.slice(0, Math.ceil(text.length / 4) * 4))], [...bytes]);
});
