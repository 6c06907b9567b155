//! One open terminal: an xterm.js emulator with its addons, bound to a
//! `TerminalConnection`. The emulator follows the PTY's size (from `reset` and
//! `session` messages, so replays render exactly); this viewer asks for the
//! size that fills its area when it attaches, when the area changes and when
//! the user types while another viewer's size is in force, and takes that
//! size at once (announcements older than the request are ignored, see
//! `PtySizeFollower`). Every size change goes through the emulator's write
//! queue, so output received before it is drawn at the size it was made for.

import { Terminal, type IDisposable } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebglAddon } from '@xterm/addon-webgl';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { ClipboardAddon, type IClipboardProvider } from '@xterm/addon-clipboard';
import type { Session } from '../app/api';
import { h } from '../app/dom';
import type { Scheme } from '../app/theme';
import { TerminalConnection, type TerminalState } from './connection';
import { clampDimension, encodeBinaryInput, encodeInput } from './protocol';
import { PtySizeFollower, sameSize, type Size } from './size';
import { terminalTheme } from './themes';

export const FONT_FAMILY =
  'ui-monospace, "SF Mono", "Cascadia Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

export interface PaneHost {
  /** Rewrites typed input (sticky modifiers). */
  transformInput(data: string): string;
  /** The pane's session or state changed. */
  changed(pane: TerminalPane): void;
  /** A message for the user (notices, refusals). */
  notify(pane: TerminalPane, text: string, tone: 'info' | 'error'): void;
  /** A keyboard shortcut of the app was pressed inside the terminal. */
  shortcut(pane: TerminalPane, action: 'search' | 'copy'): void;
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
  private readonly fitAddon = new FitAddon();
  private readonly connection: TerminalConnection;
  private readonly disposables: IDisposable[] = [];
  private resizeObserver: ResizeObserver | null = null;
  /** The size that fills this viewer's area (asked for when it changes). */
  private desired: Size | null = null;
  /** The size the emulator has once its write queue is through. */
  private target: Size | null = null;
  private readonly ptySize = new PtySizeFollower();
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
    this.element = h('div', { class: 'pane', attrs: { 'data-session-id': sessionId } }, this.host, this.banner);
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
    this.resizeObserver.observe(this.host);
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

  setFontSize(size: number): void {
    this.term.options.fontSize = size;
    this.scheduleFit();
  }

  setScheme(scheme: Scheme): void {
    this.term.options.theme = terminalTheme(scheme);
  }

  /** The size that fills the pane's area with the current font (null while hidden). */
  fittedSize(): Size | null {
    return this.proposeSize();
  }

  /** Sends bytes as if typed (the key bar), through the sticky modifiers. */
  sendKeys(data: string): void {
    this.typed(data);
  }

  /** The whole buffer (scrollback and screen) as text, trailing blank lines dropped. */
  bufferText(): string {
    const buffer = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
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
    for (const disposable of this.disposables) disposable.dispose();
    this.term.dispose();
    this.element.remove();
  }

  private loadAddons(): void {
    this.term.loadAddon(this.fitAddon);
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
    const primary = event.ctrlKey || event.metaKey;
    if (primary && event.shiftKey && event.code === 'KeyF') {
      event.preventDefault();
      this.paneHost.shortcut(this, 'search');
      return false;
    }
    if (primary && event.shiftKey && event.code === 'KeyC') {
      event.preventDefault();
      this.paneHost.shortcut(this, 'copy');
      return false;
    }
    // Ctrl+Shift+V: let the browser paste into the terminal.
    if (primary && event.shiftKey && event.code === 'KeyV') return false;
    return true;
  }

  private typed(data: string): void {
    const input = this.paneHost.transformInput(data);
    this.claimSize();
    this.connection.input(encodeInput(input));
  }

  /** Typing makes this the active viewer: ask for its own size if another one is in force. */
  private claimSize(): void {
    const desired = this.desired;
    if (!desired || sameSize(desired, this.emulatorSize())) return;
    this.request(desired);
  }

  /** Asks the gateway for `size` and gives it to the emulator now. */
  private request(size: Size): void {
    if (this.connection.resize(size.cols, size.rows)) this.ptySize.requested(size);
    this.resizeEmulator(size);
  }

  /** Resizes the emulator once the output queued before is written. */
  private resizeEmulator(size: Size): void {
    this.target = size;
    this.term.write('', () => this.applySize(size));
  }

  private applySize({ cols, rows }: Size): void {
    if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
  }

  private emulatorSize(): Size {
    return this.target ?? { cols: this.term.cols, rows: this.term.rows };
  }

  /** The size to attach with, remembered as the one this viewer wants. */
  private attachSize(): Size | null {
    const size = this.proposeSize();
    if (size) this.desired = size;
    return size ?? this.desired;
  }

  /** The size that fills the area, in the range the gateway accepts. */
  private proposeSize(): Size | null {
    if (!this.opened || this.element.hidden || this.host.clientWidth === 0 || this.host.clientHeight === 0) return null;
    const dims = this.fitAddon.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || !Number.isFinite(dims.rows)) return null;
    return { cols: Math.max(2, clampDimension(dims.cols)), rows: clampDimension(dims.rows) };
  }

  private scheduleFit(): void {
    if (this.fitScheduled) return;
    this.fitScheduled = true;
    requestAnimationFrame(() => {
      this.fitScheduled = false;
      this.fit();
    });
  }

  /** Fills the area: resizes the emulator and asks the gateway for the new size. */
  private fit(): void {
    const size = this.proposeSize();
    if (!size) return;
    const changed = !this.desired || !sameSize(this.desired, size);
    this.desired = size;
    if (changed) this.request(size);
  }

  private attached(session: Session): void {
    this.everAttached = true;
    this.session = session;
    // A new socket: what was in flight on the previous one is gone.
    this.ptySize.restart();
    // The area may have changed while connecting: ask for its size now.
    this.desired = null;
    this.scheduleFit();
    this.paneHost.changed(this);
  }

  private reset(cols: number, rows: number): void {
    // Through the write queue, so output queued before the reset is parsed
    // first and the replay after it lands on a clean emulator of the PTY's
    // size. When that size is another viewer's, typing claims ours back.
    const size = { cols, rows };
    this.ptySize.reset(size);
    this.target = size;
    this.term.write('\x1bc', () => this.applySize(size));
  }

  private sessionChanged(session: Session): void {
    this.session = session;
    const size = { cols: session.cols, rows: session.rows };
    const valid = Number.isInteger(size.cols) && Number.isInteger(size.rows) && size.cols > 0 && size.rows > 0;
    if (valid && this.ptySize.session(size)) this.resizeEmulator(size);
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
