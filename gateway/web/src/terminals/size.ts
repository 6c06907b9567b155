//! Terminal sizes on one viewer: the size that fills its area (what it asks
//! the PTY to take when it drives it) and the font it draws the PTY's size
//! with. The emulator always has the PTY's columns and rows, so every
//! character of a replay or of live output has its place; when the PTY is
//! wider than the area (another, wider screen drives it), the font shrinks to
//! fit the width, down to a readable minimum, and the rest is panned to.

import { MAX_TERMINAL_DIMENSION as MAX_DIMENSION } from '../generated/limits';

export interface Size {
  readonly cols: number;
  readonly rows: number;
}

/** A terminal cell's size in CSS pixels. */
export interface Cell {
  readonly width: number;
  readonly height: number;
}

/** The smallest font a scaled-down terminal is drawn with (CSS pixels). */
export const READABLE_FONT = 8;

export function sameSize(a: Size, b: Size): boolean {
  return a.cols === b.cols && a.rows === b.rows;
}

/** The cell of `font` given the cell measured at `measuredFont` (cells scale with the font). */
export function cellAt(measured: Cell, measuredFont: number, font: number): Cell {
  const ratio = font / measuredFont;
  return { width: measured.width * ratio, height: measured.height * ratio };
}

/** The columns and rows of `cell` that fit `width` x `height` (at least 2 x 1). */
export function sizeThatFits(width: number, height: number, cell: Cell): Size | null {
  if (!(cell.width > 0 && cell.height > 0 && width > 0 && height > 0)) return null;
  const cols = Math.floor(width / cell.width);
  const rows = Math.floor(height / cell.height);
  return { cols: Math.min(MAX_DIMENSION, Math.max(2, cols)), rows: Math.min(MAX_DIMENSION, Math.max(1, rows)) };
}

/**
 * The font that draws `cols` columns within `width`: the viewer's own font
 * when they fit, else smaller, in half-pixel steps, but never below
 * `READABLE_FONT` (the rest is panned to).
 */
export function fontToFit(cols: number, width: number, userCell: Cell, userFont: number): number {
  const natural = cols * userCell.width;
  if (!(natural > width) || width <= 0) return userFont;
  const scaled = Math.floor(((userFont * width) / natural) * 2) / 2;
  return Math.max(Math.min(READABLE_FONT, userFont), Math.min(userFont, scaled));
}
