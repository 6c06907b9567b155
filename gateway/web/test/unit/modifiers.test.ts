import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StickyModifiers, applyModifiers, controlCharacter } from '../../src/terminals/modifiers';

test('Ctrl turns a key into its control character', () => {
  assert.equal(applyModifiers('c', { ctrl: true, alt: false }), '\x03');
  assert.equal(applyModifiers('C', { ctrl: true, alt: false }), '\x03');
  assert.equal(applyModifiers('[', { ctrl: true, alt: false }), '\x1b');
  assert.equal(applyModifiers(' ', { ctrl: true, alt: false }), '\x00');
  assert.equal(applyModifiers('?', { ctrl: true, alt: false }), '\x7f');
  assert.equal(controlCharacter('é'), null);
  assert.equal(applyModifiers('ls', { ctrl: true, alt: false }), 'ls', 'longer input passes unchanged');
});

test('Alt prefixes Escape; arrows get the modifier parameter', () => {
  assert.equal(applyModifiers('b', { ctrl: false, alt: true }), '\x1bb');
  assert.equal(applyModifiers('c', { ctrl: true, alt: true }), '\x1b\x03');
  assert.equal(applyModifiers('\x1b[D', { ctrl: true, alt: false }), '\x1b[1;5D');
  assert.equal(applyModifiers('\x1bOA', { ctrl: false, alt: true }), '\x1b[1;3A');
  assert.equal(applyModifiers('\x1b[C', { ctrl: true, alt: true }), '\x1b[1;7C');
  assert.equal(applyModifiers('x', { ctrl: false, alt: false }), 'x');
});

test('a tapped modifier applies to one key; a double tap locks it', () => {
  const modifiers = new StickyModifiers();
  let changes = 0;
  modifiers.onChange(() => changes++);
  modifiers.tap('ctrl');
  assert.equal(modifiers.level('ctrl'), 'once');
  assert.equal(modifiers.apply('c'), '\x03');
  assert.equal(modifiers.level('ctrl'), 'off');
  assert.equal(modifiers.apply('c'), 'c');

  modifiers.tap('alt');
  modifiers.tap('alt');
  assert.equal(modifiers.level('alt'), 'locked');
  assert.equal(modifiers.apply('f'), '\x1bf');
  assert.equal(modifiers.apply('b'), '\x1bb');
  modifiers.tap('alt');
  assert.equal(modifiers.level('alt'), 'off');
  assert.ok(changes >= 5);
});
