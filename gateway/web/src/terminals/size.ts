//! Which of the PTY sizes announced on a terminal socket the emulator takes.
//!
//! The emulator follows the PTY's size (`reset` and `session` messages), but
//! this viewer's own resize requests take effect in the emulator at once. An
//! announcement that left the broker before the broker applied such a request
//! carries an older size: following it would take the emulator back to a
//! size the PTY is leaving (the emulator bounces while a window is dragged or
//! the font changes twice in a row). The broker applies a viewer's requests
//! in order and announces every change of the PTY's size to every viewer, in
//! order: each request that changes the size is answered by an announcement
//! of that size, and until the latest request is answered, announcements are
//! stale.

export interface Size {
  readonly cols: number;
  readonly rows: number;
}

export function sameSize(a: Size, b: Size): boolean {
  return a.cols === b.cols && a.rows === b.rows;
}

export class PtySizeFollower {
  /** The size of the last announcement received on this socket. */
  private announced: Size | null = null;
  /** This viewer's requests not answered yet, oldest first. */
  private readonly awaiting: Size[] = [];

  /** A new socket: nothing sent or announced on the old one is in flight any more. */
  restart(): void {
    this.announced = null;
    this.awaiting.length = 0;
  }

  /** This viewer asked the gateway for `size` (and the emulator takes it). */
  requested(size: Size): void {
    // The broker announces a request only when it changes the PTY's size: not
    // when it repeats the request before it, nor when nothing is awaited and
    // the last announcement already had this size (then the PTY has it, or an
    // announcement of its current size is still on the way).
    const last = this.awaiting[this.awaiting.length - 1] ?? this.announced;
    if (last && sameSize(last, size)) return;
    this.awaiting.push(size);
  }

  /** A `session` message announced `size`: whether the emulator takes it. */
  session(size: Size): boolean {
    this.announced = size;
    const oldest = this.awaiting[0];
    if (!oldest) return true;
    // An answer to the oldest request, or an announcement from before it.
    if (sameSize(oldest, size)) this.awaiting.shift();
    return this.awaiting.length === 0;
  }

  /**
   * A `reset` announced `size`; the emulator always takes it (the replay that
   * follows is drawn for that size). Announcements are followed again from
   * here: a viewer the gateway attaches again is attached with its latest
   * size, and a request the broker applies after the reset is announced after
   * it if it still changes the PTY's size.
   */
  reset(size: Size): void {
    this.announced = size;
    this.awaiting.length = 0;
  }
}
