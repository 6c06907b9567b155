//! The key bar for phones: the keys their keyboards lack, with Ctrl and Alt
//! as sticky modifiers, Copy (the selection, made with a long press) and
//! Paste. Page Up/Down and Home/End move through the scrollback while the
//! shell's screen is shown (Home to the oldest line, End back to the newest)
//! and are sent as keys to full-screen programs (the alternate screen).
//! Buttons never take the focus, so the soft keyboard stays open on the
//! terminal. Every key has a grid area, so the stylesheet lays the bar out as
//! one row where it fits and as two rows (the arrows as an inverted T) on a
//! narrow phone, never as a row that scrolls.

import { h, icon } from '../app/dom';
import type { StickyModifiers } from './modifiers';

/** Where the scrollback keys move the view. */
export type ScrollTo = 'pageUp' | 'pageDown' | 'top' | 'bottom';

type KeySpec = { label: string; title: string; area: string } & (
  | { data: string | ((appCursor: boolean) => string); icon?: Parameters<typeof icon>[0] }
  | { modifier: 'ctrl' | 'alt' }
  | { scroll: ScrollTo; data: string | ((appCursor: boolean) => string) }
  | { action: 'copy' | 'paste' }
);

const arrow = (final: string) => (appCursor: boolean) => (appCursor ? `\x1bO${final}` : `\x1b[${final}`);

const KEYS: KeySpec[] = [
  { label: 'Esc', title: 'Escape', area: 'esc', data: '\x1b' },
  { label: 'Tab', title: 'Tab', area: 'tab', data: '\t' },
  { label: 'Ctrl', title: 'Ctrl (sticky: tap once for the next key, twice to lock)', area: 'ctrl', modifier: 'ctrl' },
  { label: 'Alt', title: 'Alt (sticky: tap once for the next key, twice to lock)', area: 'alt', modifier: 'alt' },
  { label: '←', title: 'Left', area: 'left', data: arrow('D'), icon: 'left' },
  { label: '↑', title: 'Up', area: 'up', data: arrow('A'), icon: 'up' },
  { label: '↓', title: 'Down', area: 'down', data: arrow('B'), icon: 'down' },
  { label: '→', title: 'Right', area: 'right', data: arrow('C'), icon: 'right' },
  { label: '|', title: 'Pipe', area: 'pipe', data: '|' },
  { label: '~', title: 'Tilde', area: 'tilde', data: '~' },
  { label: '/', title: 'Slash', area: 'slash', data: '/' },
  { label: '-', title: 'Dash', area: 'dash', data: '-' },
  { label: 'PgUp', title: 'Page Up (scrolls back through earlier output)', area: 'pgup', scroll: 'pageUp', data: '\x1b[5~' },
  { label: 'PgDn', title: 'Page Down', area: 'pgdn', scroll: 'pageDown', data: '\x1b[6~' },
  { label: 'Home', title: 'Home (the oldest output)', area: 'home', scroll: 'top', data: (app) => (app ? '\x1bOH' : '\x1b[H') },
  { label: 'End', title: 'End (back to the newest output)', area: 'end', scroll: 'bottom', data: (app) => (app ? '\x1bOF' : '\x1b[F') },
  { label: 'Copy', title: 'Copy the selection (long-press the text to select it)', area: 'copy', action: 'copy' },
  { label: 'Paste', title: 'Paste', area: 'paste', action: 'paste' },
];

export interface KeybarTarget {
  /** Sends input through the sticky modifiers, as if typed. */
  sendKeys(data: string): void;
  /** Whether the terminal asked for application cursor keys. */
  applicationCursor(): boolean;
  /** Gives the focus back to the terminal. */
  focus(): void;
  /** Whether a full-screen program has the screen (no scrollback to move through). */
  alternateScreen(): boolean;
  /** Moves the view through the scrollback. */
  scroll(to: ScrollTo): void;
  /** Copies the selection to the clipboard. */
  copy(): void;
  /** Pastes the clipboard as typed. */
  paste(): void;
}

export class Keybar {
  readonly element: HTMLDivElement;
  private readonly modifierButtons = new Map<'ctrl' | 'alt', HTMLButtonElement>();

  constructor(
    private readonly modifiers: StickyModifiers,
    private readonly target: () => KeybarTarget | null,
  ) {
    this.element = h('div', { class: 'keybar', testid: 'keybar', attrs: { role: 'toolbar', 'aria-label': 'Terminal keys' } });
    for (const key of KEYS) this.element.appendChild(this.button(key));
    modifiers.onChange(() => this.render());
    this.render();
  }

  private button(key: KeySpec): HTMLButtonElement {
    const button = h('button', {
      class: 'key',
      title: key.title,
      attrs: { type: 'button', 'aria-label': key.title, 'data-key': key.label, 'data-area': key.area },
      // Keep the focus (and the soft keyboard) on the terminal.
      on: { mousedown: (event: MouseEvent) => event.preventDefault(), click: () => this.pressed(key) },
    });
    if ('icon' in key && key.icon) button.appendChild(icon(key.icon));
    else button.textContent = key.label;
    if (key.label.length > 2) button.classList.add('word');
    if ('modifier' in key) {
      button.classList.add('modifier');
      this.modifierButtons.set(key.modifier, button);
    }
    return button;
  }

  private pressed(key: KeySpec): void {
    const target = this.target();
    if ('modifier' in key) {
      this.modifiers.tap(key.modifier);
    } else if (!target) {
      return;
    } else if ('action' in key) {
      if (key.action === 'copy') target.copy();
      else target.paste();
    } else if ('scroll' in key && !target.alternateScreen()) {
      target.scroll(key.scroll);
    } else {
      const data = typeof key.data === 'function' ? key.data(target.applicationCursor()) : key.data;
      target.sendKeys(data);
    }
    target?.focus();
  }

  private render(): void {
    for (const [name, button] of this.modifierButtons) {
      const level = this.modifiers.level(name);
      button.dataset.level = level;
      button.setAttribute('aria-pressed', level === 'off' ? 'false' : 'true');
    }
  }
}
