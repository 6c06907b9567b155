//! Touch on a terminal: a swipe scrolls the scrollback (up and down, with
//! momentum after the finger lifts) and pans a terminal wider than the screen
//! (left and right); a long press selects the word under the finger and
//! dragging after it extends the selection; a tap is left to the emulator
//! (focus, the soft keyboard).

import type { Terminal } from '@xterm/xterm';
import type { Cell } from './size';

/** How far a finger moves before a touch is a swipe (CSS pixels). */
const SLOP = 8;
/** How long a finger rests before a touch is a long press (ms). */
const LONG_PRESS_MS = 450;
/** Momentum: the speed kept per 16 ms frame, and the speed it stops at (px/ms). */
const FRICTION = 0.95;
const MIN_SPEED = 0.03;

export interface TouchTarget {
  readonly term: Terminal;
  /** The element panned left and right when the terminal is wider than it. */
  readonly scroller: HTMLElement;
  /** The terminal's cell size now, null until measured. */
  cell(): Cell | null;
  /** A long press selected text. */
  selected(): void;
}

type Mode = 'pending' | 'swipe' | 'select';

interface Point {
  x: number;
  y: number;
}

export class TouchGestures {
  private mode: Mode | null = null;
  private start: Point = { x: 0, y: 0 };
  private last: Point = { x: 0, y: 0 };
  private lastTime = 0;
  private velocity: Point = { x: 0, y: 0 };
  /** Vertical pixels swiped but not yet scrolled (less than a line). */
  private pendingPixels = 0;
  private anchor: { col: number; row: number } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private frame: number | null = null;
  private readonly listeners: [string, EventListener][] = [];

  constructor(
    private readonly element: HTMLElement,
    private readonly target: TouchTarget,
  ) {
    this.listen('touchstart', (event) => this.touchStart(event as TouchEvent));
    this.listen('touchmove', (event) => this.touchMove(event as TouchEvent));
    this.listen('touchend', (event) => this.touchEnd(event as TouchEvent));
    this.listen('touchcancel', () => this.cancel());
    // The browser's own long-press menu would cover the selection.
    this.listen('contextmenu', (event) => {
      if (this.mode === 'select' || this.target.term.hasSelection()) event.preventDefault();
    });
  }

  dispose(): void {
    this.cancel();
    this.stopMomentum();
    for (const [type, listener] of this.listeners) this.element.removeEventListener(type, listener, true);
  }

  private listen(type: string, listener: EventListener): void {
    this.element.addEventListener(type, listener, { capture: true, passive: false });
    this.listeners.push([type, listener]);
  }

  private touchStart(event: TouchEvent): void {
    this.stopMomentum();
    if (event.touches.length !== 1) {
      this.cancel();
      return;
    }
    const touch = event.touches[0]!;
    this.mode = 'pending';
    this.start = this.last = { x: touch.clientX, y: touch.clientY };
    this.lastTime = event.timeStamp;
    this.velocity = { x: 0, y: 0 };
    this.pendingPixels = 0;
    this.timer = setTimeout(() => this.longPress(), LONG_PRESS_MS);
  }

  private touchMove(event: TouchEvent): void {
    if (this.mode === null || event.touches.length !== 1) return;
    const touch = event.touches[0]!;
    const point = { x: touch.clientX, y: touch.clientY };
    if (this.mode === 'pending') {
      if (Math.hypot(point.x - this.start.x, point.y - this.start.y) < SLOP) return;
      this.clearTimer();
      this.mode = 'swipe';
    }
    // Ours: neither the emulator nor the page scrolls on its own.
    event.preventDefault();
    event.stopPropagation();
    if (this.mode === 'select') {
      this.extendSelection(point);
      return;
    }
    const dx = point.x - this.last.x;
    const dy = point.y - this.last.y;
    const dt = Math.max(1, event.timeStamp - this.lastTime);
    // Smoothed speed of the last moves, for the momentum.
    this.velocity = { x: 0.8 * (dx / dt) + 0.2 * this.velocity.x, y: 0.8 * (dy / dt) + 0.2 * this.velocity.y };
    this.last = point;
    this.lastTime = event.timeStamp;
    this.scrollBy(dx, dy);
  }

  private touchEnd(event: TouchEvent): void {
    const mode = this.mode;
    this.clearTimer();
    this.mode = null;
    if (mode === 'swipe' || mode === 'select') {
      // No click: a swipe or a selection is not a tap.
      event.preventDefault();
      event.stopPropagation();
    }
    if (mode === 'swipe' && event.timeStamp - this.lastTime < 100) this.momentum();
    if (mode === 'select' && this.target.term.hasSelection()) this.target.selected();
  }

  private cancel(): void {
    this.clearTimer();
    this.mode = null;
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Moves the content with the finger: `dy` down shows earlier lines. */
  private scrollBy(dx: number, dy: number): void {
    if (dx !== 0) this.target.scroller.scrollLeft -= dx;
    const cell = this.target.cell();
    if (!cell || dy === 0) return;
    this.pendingPixels += dy;
    const lines = Math.trunc(this.pendingPixels / cell.height);
    if (lines === 0) return;
    this.pendingPixels -= lines * cell.height;
    this.target.term.scrollLines(-lines);
  }

  private momentum(): void {
    let { x, y } = this.velocity;
    let previous = performance.now();
    const step = (now: number): void => {
      const dt = Math.min(64, now - previous);
      previous = now;
      const decay = Math.pow(FRICTION, dt / 16);
      x *= decay;
      y *= decay;
      if (Math.hypot(x, y) < MIN_SPEED) {
        this.frame = null;
        return;
      }
      this.scrollBy(x * dt, y * dt);
      this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  /** Stops a swipe's momentum (another control moved the view). */
  stopMomentum(): void {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
  }

  private longPress(): void {
    this.timer = null;
    const at = this.cellAt(this.start);
    if (!at) return;
    this.mode = 'select';
    const [from, to] = this.wordAround(at.col, at.row);
    this.anchor = { col: from, row: at.row };
    this.target.term.select(from, at.row, to - from + 1);
    navigator.vibrate?.(10);
  }

  private extendSelection(point: Point): void {
    const at = this.cellAt(point);
    const anchor = this.anchor;
    if (!at || !anchor) return;
    const cols = this.target.term.cols;
    const a = anchor.row * cols + anchor.col;
    const b = at.row * cols + at.col;
    const [first, last] = a <= b ? [a, b] : [b, a];
    this.target.term.select(first % cols, Math.floor(first / cols), last - first + 1);
  }

  /** The buffer cell under a point, or null outside the grid. */
  private cellAt(point: Point): { col: number; row: number } | null {
    const term = this.target.term;
    const screen = term.element?.querySelector('.xterm-screen');
    const cell = this.target.cell();
    if (!screen || !cell) return null;
    const rect = screen.getBoundingClientRect();
    const col = Math.floor((point.x - rect.left) / cell.width);
    const row = Math.floor((point.y - rect.top) / cell.height);
    if (col < 0 || row < 0 || col >= term.cols || row >= term.rows) return null;
    return { col, row: row + term.buffer.active.viewportY };
  }

  /** The columns of the word (non-blank run) at a cell; the cell itself when blank. */
  private wordAround(col: number, row: number): [number, number] {
    const text = this.target.term.buffer.active.getLine(row)?.translateToString(false) ?? '';
    const blank = (i: number) => i < 0 || i >= text.length || /\s/.test(text[i]!);
    if (blank(col)) return [col, col];
    let from = col;
    let to = col;
    while (!blank(from - 1)) from--;
    while (!blank(to + 1)) to++;
    return [from, to];
  }
}
