import { test } from 'node:test';
import assert from 'node:assert/strict';
import { READABLE_FONT, cellAt, fontToFit, sizeThatFits } from '../../src/terminals/size';

const cell = { width: 8, height: 16 };

test('the size that fits an area, within the accepted range', () => {
  assert.deepEqual(sizeThatFits(400, 330, cell), { cols: 50, rows: 20 });
  assert.deepEqual(sizeThatFits(5, 5, cell), { cols: 2, rows: 1 });
  assert.deepEqual(sizeThatFits(100_000, 100_000, cell), { cols: 1000, rows: 1000 });
  assert.equal(sizeThatFits(0, 300, cell), null, 'hidden');
  assert.equal(sizeThatFits(400, 300, { width: 0, height: 0 }), null, 'not measured yet');
});

test('cells scale with the font', () => {
  assert.deepEqual(cellAt(cell, 14, 7), { width: 4, height: 8 });
});

test('a PTY that fits is drawn with the viewer\'s font', () => {
  assert.equal(fontToFit(80, 800, cell, 14), 14);
  assert.equal(fontToFit(100, 800, cell, 14), 14);
});

test('a wider PTY shrinks the font to fit the width, in half pixels', () => {
  // 120 columns of 8 px = 960 px into 800 px: 14 * 800 / 960 = 11.67.
  assert.equal(fontToFit(120, 800, cell, 14), 11.5);
});

test('never below the readable minimum: the rest is panned to', () => {
  assert.equal(fontToFit(300, 390, cell, 14), READABLE_FONT);
  assert.equal(fontToFit(300, 390, cell, 6), 6, 'a viewer\'s own smaller font is kept');
});
