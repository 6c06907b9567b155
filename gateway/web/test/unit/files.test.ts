import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileSize, isImageName, numberedName, pastedName, shellQuote } from '../../src/files/format';
import { joinPath, parentPath } from '../../src/files/api';

test('a path typed at the prompt is one shell word', () => {
  assert.equal(shellQuote('/tmp/s/shot.png'), '/tmp/s/shot.png');
  assert.equal(shellQuote('/tmp/s/a b.png'), "'/tmp/s/a b.png'");
  assert.equal(shellQuote("/tmp/it's;rm -rf ~"), "'/tmp/it'\\''s;rm -rf ~'");
  assert.equal(shellQuote('/tmp/$(reboot)`x`'), "'/tmp/$(reboot)`x`'");
  assert.equal(shellQuote('/tmp/new\nline'), "'/tmp/new\nline'");
});

test('pasted images are named by the time and their type', () => {
  const at = new Date(2026, 0, 2, 3, 4, 5);
  assert.equal(pastedName('image/png', at), 'pasted-20260102-030405.png');
  assert.equal(pastedName('image/jpeg', at), 'pasted-20260102-030405.jpg');
  assert.equal(pastedName('image/svg+xml', at), 'pasted-20260102-030405.svg');
  assert.equal(pastedName('image/../../x', at), 'pasted-20260102-030405.bin');
  assert.equal(pastedName('', at), 'pasted-20260102-030405.bin');
});

test('a taken name gets a number before its extension', () => {
  assert.equal(numberedName('shot.png', 1), 'shot (1).png');
  assert.equal(numberedName('Makefile', 2), 'Makefile (2)');
  assert.equal(numberedName('.env', 3), '.env (3)');
});

test('sizes, image names and paths', () => {
  assert.equal(fileSize(0), '0 B');
  assert.equal(fileSize(1536), '1.5 KiB');
  assert.equal(fileSize(200 * 1024 * 1024), '200 MiB');
  assert.ok(isImageName('a.PNG') && isImageName('b.jpeg'));
  assert.ok(!isImageName('a.svg') && !isImageName('png') && !isImageName('x.html'));
  assert.equal(joinPath('', 'a'), 'a');
  assert.equal(joinPath('a/b', 'c'), 'a/b/c');
  assert.equal(parentPath('a/b/c'), 'a/b');
  assert.equal(parentPath('a'), '');
});
