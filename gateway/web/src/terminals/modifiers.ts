//! Sticky Ctrl and Alt for keyboards that lack them (phones): the next input
//! is rewritten as the terminal would receive it with the modifier held.
//! Tapping a modifier once arms it for one key, a second tap locks it, a
//! third releases it.

export type ModifierLevel = 'off' | 'once' | 'locked';

export interface ModifierKeys {
  ctrl: boolean;
  alt: boolean;
}

/** The control character for Ctrl+`char`, or null when there is none. */
export function controlCharacter(char: string): string | null {
  if (char.length !== 1) return null;
  const code = char.charCodeAt(0);
  if ((code >= 0x61 && code <= 0x7a) || (code >= 0x40 && code <= 0x5f)) return String.fromCharCode(code & 0x1f);
  switch (char) {
    case ' ':
    case '2':
      return '\x00';
    case '3':
      return '\x1b';
    case '4':
      return '\x1c';
    case '5':
      return '\x1d';
    case '6':
      return '\x1e';
    case '7':
    case '-':
    case '/':
      return '\x1f';
    case '8':
    case '?':
      return '\x7f';
    default:
      return null;
  }
}

const CURSOR_KEY = /^\x1b[[O]([ABCDHF])$/;

/** Rewrites terminal input as if `keys` were held while typing it. */
export function applyModifiers(data: string, keys: ModifierKeys): string {
  if (!keys.ctrl && !keys.alt) return data;
  const cursor = CURSOR_KEY.exec(data);
  if (cursor) {
    const parameter = 1 + (keys.alt ? 2 : 0) + (keys.ctrl ? 4 : 0);
    return `\x1b[1;${parameter}${cursor[1]}`;
  }
  let result = data;
  if (keys.ctrl) {
    // Only a single typed character has a control form; anything longer (a
    // paste, an escape sequence) passes through unchanged.
    const control = controlCharacter(data);
    if (control !== null) result = control;
  }
  if (keys.alt) result = `\x1b${result}`;
  return result;
}

/** The state of the sticky modifiers, shared by the key bar and the terminal input. */
export class StickyModifiers {
  private levels: Record<keyof ModifierKeys, ModifierLevel> = { ctrl: 'off', alt: 'off' };
  private readonly listeners = new Set<() => void>();

  level(key: keyof ModifierKeys): ModifierLevel {
    return this.levels[key];
  }

  /** A tap on the modifier's key: off, then once, then locked, then off. */
  tap(key: keyof ModifierKeys): void {
    const next: Record<ModifierLevel, ModifierLevel> = { off: 'once', once: 'locked', locked: 'off' };
    this.levels[key] = next[this.levels[key]];
    this.changed();
  }

  /** Applies the active modifiers to one input and releases the one-shot ones. */
  apply(data: string): string {
    const keys = { ctrl: this.levels.ctrl !== 'off', alt: this.levels.alt !== 'off' };
    if (!keys.ctrl && !keys.alt) return data;
    const result = applyModifiers(data, keys);
    let released = false;
    for (const key of ['ctrl', 'alt'] as const) {
      if (this.levels[key] === 'once') {
        this.levels[key] = 'off';
        released = true;
      }
    }
    if (released) this.changed();
    return result;
  }

  reset(): void {
    this.levels = { ctrl: 'off', alt: 'off' };
    this.changed();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
