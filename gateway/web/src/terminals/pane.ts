//! One open terminal: an xterm.js emulator with its addons, bound to a
//! `TerminalConnection`. The emulator always has the PTY's size (from `reset`
//! and `session` messages), so replays and output render exactly and nothing
//! is cut; every size change goes through the emulator's write queue, so
//! output received before it is drawn at the size it was made for. This
//! viewer tells the gateway the size that fills its area (the PTY takes it
//! while this viewer drives: after it types, or after "Fit to this screen");
//! when another screen's size is in force, the pane says so, draws the PTY's
//! columns with a font small enough to fit its width (down to a readable
//! minimum, see `size.ts`) and pans the rest.

import { Terminal, type IDisposable } from '@xterm/xterm';
import { WebglAddon } from '@xterm/addon-webgl';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { ClipboardAddon, type IClipboardProvider } from '@xterm/addon-clipboard';
import type { Session } from '../app/api';
import { h } from '../app/dom';
import type { Scheme } from '../app/theme';
import { TerminalConnection, type TerminalState } from './connection';
import { encodeBinaryInput, encodeInput } from './protocol';
import { cellAt, fontToFit, sameSize, sizeThatFits, type Cell, type Size } from './size';
import { TouchGestures } from './touch';
import type { ScrollTo } from './keybar';
import { terminalTheme } from './themes';

export const FONT_FAMILY =
  'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

/**
 * The app's keys inside a terminal (every other key is the program's, Tab
 * included): Ctrl+Shift+F search, Ctrl+Shift+C copy, Ctrl+Shift+L leave the
 * terminal for its tab, Alt+Shift+Left/Right the previous or next tab.
 */
export type Shortcut = 'search' | 'copy' | 'leave' | 'previous-tab' | 'next-tab';

/** Said to assistive technology on the terminal. */
export const SHORTCUTS_HELP =
  'Ctrl+Shift+L leaves the terminal, Alt+Shift+Left and Right switch tabs, Ctrl+Shift+F searches, Ctrl+Shift+C copies.';

/** The shortcut a key press inside the terminal means, if any. */
function shortcutOf(event: KeyboardEvent): Shortcut | null {
  const primary = event.ctrlKey || event.metaKey;
  if (primary && event.shiftKey && !event.altKey) {
    if (event.code === 'KeyF') return 'search';
    if (event.code === 'KeyC') return 'copy';
    if (event.code === 'KeyL') return 'leave';
  }
  if (event.altKey && event.shiftKey && !primary) {
    if (event.code === 'ArrowLeft') return 'previous-tab';
    if (event.code === 'ArrowRight') return 'next-tab';
  }
  return null;
}

export interface PaneHost {
  /** Rewrites typed input (sticky modifiers). */
  transformInput(data: string): string;
  /** The pane's session or state changed. */
  changed(pane: TerminalPane): void;
  /** A message for the user (notices, refusals). */
  notify(pane: TerminalPane, text: string, tone: 'info' | 'error'): void;
  /** A keyboard shortcut of the app was pressed inside the terminal. */
  shortcut(pane: TerminalPane, action: Shortcut): void;
  /** The banner's button was pressed on an ended or missing session. */
  closeRequested(pane: TerminalPane): void;
}

/** Programs may write the clipboard (OSC 52) but never read it. */
const writeOnlyClipboard: IClipboardProvider = {
  readText: () => '',
  writeText: async (_selection, text) => {
    // Refused when the page is not focused: the program's copy is dropped.
    await navigator.clipboard?.writeText(text).catch(() => {});
  },
};

function openLink(uri: string): void {
  if (!/^https?:\/\//i.test(uri)) return;
  const opened = window.open(uri, '_blank', 'noopener,noreferrer');
  if (opened) opened.opener = null;
}

/**
 * WebGL draws fastest; `localStorage['dispatch.renderer'] = 'dom'` forces
 * xterm's DOM renderer (for GPUs that draw it wrong).
 */
function useWebgl(): boolean {
  try {
    return localStorage.getItem('dispatch.renderer') !== 'dom';
  } catch {
    return true;
  }
}

/** Room xterm keeps beside the grid for its scroll bar (as its fit addon does). */
const SCROLLBAR_WIDTH = 14;
/** How long the PTY's size must differ from this screen's before the pane says so (ms). */
const SIZE_NOTE_DELAY_MS = 300;

/**
 * The emulator's cell size now. xterm.js has no public API for it; its own
 * fit addon reads the same field.
 */
function measuredCell(term: Terminal): Cell | null {
  const core = (term as unknown as { _core?: { _renderService?: { dimensions?: { css?: { cell?: Cell } } } } })._core;
  const cell = core?._renderService?.dimensions?.css?.cell;
  return cell && cell.width > 0 && cell.height > 0 ? { width: cell.width, height: cell.height } : null;
}

export class TerminalPane {
  readonly element: HTMLDivElement;
  readonly term: Terminal;
  readonly search = new SearchAddon({ highlightLimit: 500 });
  session: Session | null;
  private readonly host: HTMLDivElement;
  private readonly banner: HTMLDivElement;
  private readonly bannerText: HTMLSpanElement;
  private readonly bannerButton: HTMLButtonElement;
  /** "Not connected: input not sent", while typed input is being dropped. */
  private readonly droppedNotice: HTMLSpanElement;
  private droppedCount = 0;
  /** "Sized by another screen", with the button that makes this screen drive. */
  private readonly sizeNote: HTMLDivElement;
  private readonly sizeNoteText: HTMLSpanElement;
  private sizeNoteTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly connection: TerminalConnection;
  private readonly disposables: IDisposable[] = [];
  private resizeObserver: ResizeObserver | null = null;
  private touch: TouchGestures | null = null;
  /** The size that fills this viewer's area (told to the gateway when it changes). */
  private desired: Size | null = null;
  /** The PTY's size, as last announced (the emulator takes it in stream order). */
  private pty: Size | null = null;
  /** The font the user chose; the emulator may draw smaller to fit the PTY's width. */
  private userFont: number;
  /** The cell at the user's font, measured while the emulator draws with it. */
  private userCell: Cell | null = null;
  private everAttached = false;
  private opened = false;
  private fitScheduled = false;

  constructor(
    readonly sessionId: string,
    initial: Session | undefined,
    options: { fontSize: number; scheme: Scheme },
    private readonly paneHost: PaneHost,
  ) {
    this.session = initial ?? null;
    this.host = h('div', { class: 'xterm-host' });
    this.bannerText = h('span', { class: 'banner-text' });
    this.bannerButton = h('button', { class: 'button small', attrs: { type: 'button' }, on: { click: () => this.bannerAction() } });
    this.droppedNotice = h('span', { class: 'banner-dropped', testid: 'input-dropped', attrs: { role: 'alert' } });
    this.droppedNotice.hidden = true;
    this.banner = h(
      'div',
      { class: 'pane-banner', attrs: { role: 'status' } },
      h('div', { class: 'banner-body' }, this.bannerText, this.droppedNotice),
      this.bannerButton,
    );
    this.banner.hidden = true;
    this.sizeNoteText = h('span', { class: 'size-note-text' });
    this.sizeNote = h(
      'div',
      { class: 'size-note', testid: 'size-note', attrs: { role: 'status' } },
      this.sizeNoteText,
      h('button', {
        class: 'button small',
        testid: 'fit-screen',
        text: 'Fit to this screen',
        title: 'Give the session this screen\'s size (the other screens then show it scaled)',
        attrs: { type: 'button' },
        on: { mousedown: (event: MouseEvent) => event.preventDefault(), click: () => this.fitToScreen() },
      }),
    );
    this.sizeNote.hidden = true;
    this.userFont = options.fontSize;
    this.element = h('div', { class: 'pane', attrs: { 'data-session-id': sessionId } }, this.sizeNote, this.host, this.banner);
    this.term = new Terminal({
      allowProposedApi: true,
      cursorBlink: true,
      fontFamily: FONT_FAMILY,
      fontSize: options.fontSize,
      lineHeight: 1.15,
      scrollback: 10_000,
      theme: terminalTheme(options.scheme),
      macOptionIsMeta: true,
      rightClickSelectsWord: true,
      linkHandler: { activate: (_event, uri) => openLink(uri), allowNonHttpProtocols: false },
    });
    this.connection = new TerminalConnection({
      sessionId,
      size: () => this.attachSize(),
      sink: {
        attached: (session) => this.attached(session),
        reset: (cols, rows) => this.reset(cols, rows),
        output: (bytes, done) => this.term.write(bytes, done),
        session: (session) => this.sessionChanged(session),
        notice: (text) => this.paneHost.notify(this, text, 'info'),
        refused: (message) => this.paneHost.notify(this, message, 'error'),
        state: (state) => this.stateChanged(state),
        droppedInput: (count) => this.inputDropped(count),
      },
    });
  }

  get state(): TerminalState {
    return this.connection.state;
  }

  /** Whether this pane was attached before (so a new connection is a reconnection). */
  get reconnecting(): boolean {
    return this.everAttached;
  }

  get ackStats(): { received: number; written: number; acked: number } {
    return this.connection.ackStats;
  }

  /** Puts the pane in the page and connects. Call while visible, so it can measure. */
  open(parent: HTMLElement): void {
    if (this.opened) return;
    this.opened = true;
    parent.appendChild(this.element);
    this.term.open(this.host);
    this.loadAddons();
    this.disposables.push(
      this.term.onData((data) => this.typed(data)),
      this.term.onBinary((data) => this.connection.input(encodeBinaryInput(data))),
    );
    this.term.attachCustomKeyEventHandler((event) => this.keyEvent(event));
    // A click beside the grid (the emulator may be smaller than its area) still focuses it.
    this.element.addEventListener('mouseup', () => {
      if (!this.term.hasSelection()) this.term.focus();
    });
    this.resizeObserver = new ResizeObserver(() => this.scheduleFit());
    this.resizeObserver.observe(this.element);
    this.touch = new TouchGestures(this.host, {
      term: this.term,
      scroller: this.host,
      cell: () => measuredCell(this.term),
      selected: () => this.paneHost.changed(this),
    });
    this.connection.start();
  }

  show(): void {
    this.element.hidden = false;
    this.scheduleFit();
  }

  hide(): void {
    this.element.hidden = true;
  }

  focus(): void {
    this.term.focus();
  }

  retry(): void {
    this.connection.retry();
  }

  /** Checks at once that the connection is still alive (after the network or the page came back). */
  checkAlive(): void {
    this.connection.checkAlive();
  }

  /** The user's font: this screen's size is measured with it, and the PTY drawn with it where it fits. */
  setFontSize(size: number): void {
    this.userFont = size;
    this.userCell = null;
    this.term.options.fontSize = size;
    this.scheduleFit();
  }

  /** The font the emulator draws with now (smaller than the user's while scaled to fit). */
  get drawnFontSize(): number {
    return this.term.options.fontSize ?? this.userFont;
  }

  /** The PTY's size as last announced. */
  get ptySize(): Size | null {
    return this.pty;
  }

  /** Makes this viewer drive the PTY's size: the session takes this screen's size. */
  fitToScreen(): void {
    const own = this.ownSize() ?? this.desired;
    if (!own) return;
    this.desired = own;
    this.connection.resize(own.cols, own.rows, true);
  }

  /** Moves the view through the scrollback (the key bar's paging keys). */
  scroll(to: ScrollTo): void {
    this.touch?.stopMomentum();
    if (to === 'top') this.term.scrollToTop();
    else if (to === 'bottom') this.term.scrollToBottom();
    else this.term.scrollPages(to === 'pageUp' ? -1 : 1);
  }

  /** Pastes text as typed (bracketed when the program asked for it). */
  paste(text: string): void {
    this.term.paste(text);
  }

  setScheme(scheme: Scheme): void {
    this.term.options.theme = terminalTheme(scheme);
  }

  /** The size that fills the pane's area with the user's font (null while hidden). */
  fittedSize(): Size | null {
    return this.ownSize();
  }

  /** Sends bytes as if typed (the key bar), through the sticky modifiers. */
  sendKeys(data: string): void {
    this.typed(data);
  }

  /** The whole buffer (scrollback and screen) as text, a wrapped line whole, trailing blank lines dropped. */
  bufferText(): string {
    const buffer = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      // A row the next one continues keeps its trailing spaces: they are text.
      const text = line?.translateToString(!buffer.getLine(i + 1)?.isWrapped) ?? '';
      if (line?.isWrapped && lines.length) lines[lines.length - 1] += text;
      else lines.push(text);
    }
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.join('\n');
  }

  /** The visible screen as text. */
  screenText(): string {
    const buffer = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < this.term.rows; i++) lines.push(buffer.getLine(buffer.viewportY + i)?.translateToString(true) ?? '');
    return lines.join('\n');
  }

  /** Leaves the session running and frees the emulator. */
  dispose(): void {
    this.connection.detach();
    this.resizeObserver?.disconnect();
    this.touch?.dispose();
    if (this.sizeNoteTimer !== null) clearTimeout(this.sizeNoteTimer);
    for (const disposable of this.disposables) disposable.dispose();
    this.term.dispose();
    this.element.remove();
  }

  private loadAddons(): void {
    this.term.loadAddon(this.search);
    this.term.loadAddon(new WebLinksAddon((_event, uri) => openLink(uri)));
    this.term.loadAddon(new ClipboardAddon(undefined, writeOnlyClipboard));
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    if (!useWebgl()) {
      this.element.dataset.renderer = 'dom';
      return;
    }
    try {
      const webgl = new WebglAddon();
      webgl.onContextLoss(() => webgl.dispose());
      this.term.loadAddon(webgl);
      this.element.dataset.renderer = 'webgl';
    } catch {
      // No WebGL (headless browsers, some phones): xterm's DOM renderer stays.
      this.element.dataset.renderer = 'dom';
    }
  }

  private keyEvent(event: KeyboardEvent): boolean {
    if (event.type !== 'keydown') return true;
    const shortcut = shortcutOf(event);
    if (shortcut) {
      event.preventDefault();
      this.paneHost.shortcut(this, shortcut);
      return false;
    }
    const primary = event.ctrlKey || event.metaKey;
    // Ctrl+Shift+V: let the browser paste into the terminal.
    if (primary && event.shiftKey && event.code === 'KeyV') return false;
    return true;
  }

  private typed(data: string): void {
    // The broker makes the typing viewer the one that drives the PTY's size.
    this.connection.input(encodeInput(this.paneHost.transformInput(data)));
  }

  /** Resizes the emulator once the output queued before is written. */
  private resizeEmulator(size: Size): void {
    this.term.write('', () => this.applySize(size));
  }

  private applySize({ cols, rows }: Size): void {
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
    this.scaleToWidth();
    this.renderSizeNote();
  }

  /** The size to attach with, remembered as the one this viewer wants. */
  private attachSize(): Size | null {
    const size = this.ownSize();
    if (size) this.desired = size;
    return size ?? this.desired;
  }

  /** The pane's content box (its padding off), less xterm's scroll bar. */
  private area(): { width: number; height: number } | null {
    if (!this.opened || this.element.hidden) return null;
    const style = getComputedStyle(this.element);
    const px = (name: string) => parseFloat(style.getPropertyValue(name)) || 0;
    const width = this.element.clientWidth - px('padding-left') - px('padding-right') - SCROLLBAR_WIDTH;
    const height = this.element.clientHeight - px('padding-top') - px('padding-bottom');
    return width > 0 && height > 0 ? { width, height } : null;
  }

  /** The cell at the user's font: measured while drawn with it, else scaled from the last measure. */
  private cellAtUserFont(): Cell | null {
    const measured = measuredCell(this.term);
    if (measured && this.drawnFontSize === this.userFont) this.userCell = measured;
    if (this.userCell) return this.userCell;
    return measured ? cellAt(measured, this.drawnFontSize, this.userFont) : null;
  }

  /** The size that fills the area with the user's font, whatever the emulator draws with now. */
  private ownSize(): Size | null {
    const area = this.area();
    const cell = this.cellAtUserFont();
    return area && cell ? sizeThatFits(area.width, area.height, cell) : null;
  }

  /** Draws the PTY's columns within the width: the user's font where they fit, smaller where not. */
  private scaleToWidth(): void {
    const area = this.area();
    const cell = this.cellAtUserFont();
    const cols = this.pty?.cols ?? this.term.cols;
    if (!area || !cell) return;
    const font = fontToFit(cols, area.width, cell, this.userFont);
    if (font !== this.drawnFontSize) this.term.options.fontSize = font;
    this.element.dataset.scaled = String(font !== this.userFont);
  }

  /** Says whose size is in force when it is not this screen's (after a moment: a driver's own resize is in flight). */
  private renderSizeNote(): void {
    const pty = this.pty;
    const own = this.desired;
    const foreign = pty !== null && own !== null && !sameSize(pty, own);
    if (!foreign) {
      if (this.sizeNoteTimer !== null) clearTimeout(this.sizeNoteTimer);
      this.sizeNoteTimer = null;
      this.sizeNote.hidden = true;
      return;
    }
    this.sizeNoteText.textContent = `Sized by another screen (${pty.cols}×${pty.rows})`;
    if (!this.sizeNote.hidden || this.sizeNoteTimer !== null) return;
    this.sizeNoteTimer = setTimeout(() => {
      this.sizeNoteTimer = null;
      const now = this.pty && this.desired && !sameSize(this.pty, this.desired);
      this.sizeNote.hidden = !now;
    }, SIZE_NOTE_DELAY_MS);
  }

  private scheduleFit(): void {
    if (this.fitScheduled) return;
    this.fitScheduled = true;
    requestAnimationFrame(() => {
      this.fitScheduled = false;
      this.fit();
    });
  }

  /** Tells the gateway the size that fills the area when it changed, and rescales to the PTY's width. */
  private fit(): void {
    const size = this.ownSize();
    if (!size) return;
    if (!this.desired || !sameSize(this.desired, size)) {
      this.desired = size;
      this.connection.resize(size.cols, size.rows);
    }
    this.scaleToWidth();
    this.renderSizeNote();
  }

  private attached(session: Session): void {
    this.everAttached = true;
    this.session = session;
    // The area may have changed while connecting: tell its size now.
    this.desired = null;
    this.scheduleFit();
    this.paneHost.changed(this);
  }

  private reset(cols: number, rows: number): void {
    // Through the write queue, so output queued before the reset is parsed
    // first and the replay after it lands on a clean emulator of the PTY's size.
    const size = { cols, rows };
    this.pty = size;
    this.term.write('\x1bc', () => this.applySize(size));
  }

  private sessionChanged(session: Session): void {
    this.session = session;
    const size = { cols: session.cols, rows: session.rows };
    const valid = Number.isInteger(size.cols) && Number.isInteger(size.rows) && size.cols > 0 && size.rows > 0;
    if (valid && (!this.pty || !sameSize(this.pty, size))) {
      this.pty = size;
      this.resizeEmulator(size);
    }
    this.paneHost.changed(this);
  }

  private stateChanged(state: TerminalState): void {
    this.renderBanner(state);
    if (state.kind === 'ended' && this.session) this.session = { ...this.session, status: 'exited' };
    this.paneHost.changed(this);
  }

  /** Input was dropped while not connected (count > 0), or that is over (0). */
  private inputDropped(count: number): void {
    this.droppedCount = count;
    this.droppedNotice.dataset.count = String(count);
    this.droppedNotice.textContent = count > 1 ? `Not connected: input not sent (${count} times).` : 'Not connected: input not sent.';
    if (count > 0) {
      // Every refused key flashes the notice again, so none goes unnoticed.
      this.droppedNotice.classList.remove('flash');
      void this.droppedNotice.offsetWidth;
      this.droppedNotice.classList.add('flash');
    }
    this.renderBanner(this.connection.state);
  }

  private renderBanner(state: TerminalState): void {
    let text = '';
    let button = '';
    switch (state.kind) {
      case 'attached':
      case 'open':
        break;
      case 'connecting':
        text = this.everAttached ? 'Reconnecting…' : '';
        break;
      case 'waiting':
        text = {
          broker: 'The broker is unreachable. Reconnecting…',
          gateway: 'The gateway is restarting. Reconnecting…',
          network: 'Connection lost. Reconnecting…',
        }[state.reason];
        button = 'Retry now';
        break;
      case 'ended':
        text = state.signal
          ? `The session ended (signal ${state.signal}).`
          : `The session ended${state.code === null ? '' : ` with exit code ${state.code}`}.`;
        button = 'Close';
        break;
      case 'stopped':
        if (state.reason === 'not-found') {
          text = 'This session no longer exists.';
          button = 'Close';
        } else if (state.reason === 'protocol') {
          text = 'The gateway refused this connection.';
          button = 'Retry';
        } else if (state.reason === 'closed') {
          text = 'Detached.';
          button = 'Reattach';
        }
        break;
    }
    const dropped = this.droppedCount > 0;
    this.droppedNotice.hidden = !dropped;
    this.banner.hidden = text === '' && !dropped;
    this.banner.dataset.kind = state.kind;
    this.bannerText.textContent = text;
    this.bannerText.hidden = text === '';
    this.bannerButton.textContent = button;
    this.bannerButton.hidden = button === '';
  }

  private bannerAction(): void {
    const state = this.connection.state;
    if (state.kind === 'ended' || (state.kind === 'stopped' && state.reason === 'not-found')) {
      this.paneHost.closeRequested(this);
    } else {
      this.connection.retry();
    }
  }
}
