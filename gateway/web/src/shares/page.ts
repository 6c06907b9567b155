//! The share page (`/share#<id>.<secret>`): one session's terminal, live and
//! read-only, for someone without the key. The secret is read from the
//! fragment (never sent in a URL), exchanged once for the share's cookie,
//! and dropped from the address bar. The page draws the PTY's size with a
//! font that fits the screen's width (desktop and phone alike), accepts no
//! input, and says whose session it is and that it is read-only.
//!
//! Output is compressed when the browser can decode it and the gateway
//! agrees (the `dispatch.deflate-raw` subprotocol, see `inflate.ts`), as on
//! the owner's terminal: frames are decoded one after another and every
//! message is handled in arrival order; acknowledgements count decoded bytes.

import '@xterm/xterm/css/xterm.css';
import '../styles/app.css';
import './shares.css';

import { Terminal } from '@xterm/xterm';
import { ApiError, socketUrl } from '../app/api';
import { h } from '../app/dom';
import { currentScheme } from '../app/theme';
import { DEFLATE_PROTOCOL, FrameInflater, deflateSupported } from '../terminals/inflate';
import { FONT_FAMILY } from '../terminals/pane';
import { CloseCode, ProtocolError, decodeServerMessage, encodeClientMessage } from '../terminals/protocol';
import { terminalTheme } from '../terminals/themes';
import { explain, viewerApi, type SharedView } from './api';
import { parseFragment, untilTime } from './link';

/** The path the share page is served at. */
export const SHARE_PATH = '/share';
/** Bytes written between acknowledgements. */
const ACK_EVERY = 64 * 1024;
/** The largest and smallest font the page draws with. */
const FONT_MAX = 14;
const FONT_MIN = 6;
/** Width of a monospace cell per pixel of font size (a close estimate). */
const CELL_WIDTH_RATIO = 0.6;

/** Shows the share page in `root`. */
export function showSharePage(root: HTMLElement): void {
  document.title = 'Shared session · dispatch';
  const page = new SharePage(root);
  void page.start();
}

class SharePage {
  private readonly status = h('p', { class: 'share-status', testid: 'share-status', attrs: { 'aria-live': 'polite' } });
  private readonly title = h('h1', { class: 'share-title', testid: 'share-title' });
  private readonly expiry = h('span', { class: 'share-expiry', testid: 'share-expiry' });
  private readonly screen = h('div', { class: 'share-terminal', testid: 'share-terminal' });
  private term: Terminal | null = null;
  private view: SharedView | null = null;
  private size = { cols: 80, rows: 24 };
  private received = 0;
  private acked = 0;
  private ended = false;
  private retryDelay = 1000;
  /** The decoder of the open socket's compressed output, if it is compressed. */
  private inflater: FrameInflater | null = null;
  /** The end of the open socket's messages queued behind decoding. */
  private pending: Promise<void> = Promise.resolve();

  constructor(root: HTMLElement) {
    const badge = h('span', { class: 'share-badge', testid: 'share-read-only', text: 'Read-only' });
    const header = h('header', { class: 'share-header' }, badge, this.title, this.expiry);
    root.replaceChildren(h('main', { class: 'share-page', testid: 'share-page' }, header, this.status, this.screen));
    window.addEventListener('resize', () => this.fit());
  }

  async start(): Promise<void> {
    const link = parseFragment(location.hash);
    if (!link) {
      this.fail('This is not a share link.');
      return;
    }
    this.setStatus('Opening the link…');
    try {
      this.view = link.secret ? await viewerApi.open(link.shareId, link.secret) : await viewerApi.page(link.shareId);
    } catch (error) {
      this.fail(explain(error));
      return;
    } finally {
      // The secret has done its work: keep it out of the history and the address bar.
      history.replaceState(null, '', `${SHARE_PATH}#${link.shareId}`);
    }
    this.showView(this.view);
    this.connect();
  }

  private showView(view: SharedView): void {
    const name = view.sessionName || 'A terminal session';
    this.title.textContent = `${name} on ${view.host}`;
    this.expiry.textContent = `link expires ${untilTime(view.expiresAt)}`;
    this.expiry.title = new Date(view.expiresAt).toLocaleString();
    document.title = `${name} (read-only) · dispatch`;
  }

  private terminal(): Terminal {
    if (this.term) return this.term;
    const term = new Terminal({
      disableStdin: true,
      cursorBlink: false,
      fontFamily: FONT_FAMILY,
      fontSize: FONT_MAX,
      lineHeight: 1.15,
      scrollback: 5000,
      theme: terminalTheme(currentScheme()),
    });
    term.open(this.screen);
    this.term = term;
    return term;
  }

  private connect(): void {
    const view = this.view;
    if (!view) return;
    this.closeInflater();
    const protocols = deflateSupported() ? [DEFLATE_PROTOCOL] : [];
    const socket = new WebSocket(socketUrl(view.socket), protocols);
    socket.binaryType = 'arraybuffer';
    this.received = 0;
    this.acked = 0;
    socket.onopen = () => {
      this.closeInflater();
      if (socket.protocol === DEFLATE_PROTOCOL) this.inflater = new FrameInflater();
    };
    socket.onmessage = (event) => this.arrived(socket, event.data as string | ArrayBuffer);
    socket.onclose = (event) => {
      this.closeInflater();
      this.closed(event.code);
    };
  }

  private closeInflater(): void {
    this.inflater?.close();
    this.inflater = null;
    this.pending = Promise.resolve();
  }

  /** A message as it arrives: handled at once, or queued behind decoding. */
  private arrived(socket: WebSocket, data: string | ArrayBuffer): void {
    const inflater = this.inflater;
    if (inflater === null) {
      this.message(socket, data);
      return;
    }
    this.pending = this.pending.then(async () => {
      if (this.inflater !== inflater) return;
      if (typeof data === 'string') {
        this.message(socket, data);
        return;
      }
      let bytes: Uint8Array;
      try {
        bytes = await inflater.inflate(new Uint8Array(data));
      } catch {
        if (this.inflater !== inflater) return;
        // Unreadable output: start over on a fresh socket (its replay
        // redraws the screen).
        this.closeInflater();
        socket.close();
        return;
      }
      if (this.inflater === inflater) this.message(socket, bytes);
    });
  }

  private message(socket: WebSocket, data: string | ArrayBuffer | Uint8Array): void {
    const term = this.terminal();
    if (typeof data !== 'string') {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
      term.write(bytes, () => this.written(socket, bytes.length));
      return;
    }
    let message;
    try {
      message = decodeServerMessage(data);
    } catch (error) {
      if (error instanceof ProtocolError) return;
      throw error;
    }
    switch (message.type) {
      case 'attached':
        this.retryDelay = 1000;
        this.setStatus('Live · you are watching; typing does nothing here.');
        this.resize(message.session.cols, message.session.rows);
        break;
      case 'reset':
        term.reset();
        this.resize(message.cols, message.rows);
        break;
      case 'session':
        this.resize(message.session.cols, message.session.rows);
        break;
      case 'exit':
        this.ended = true;
        this.setStatus('The session has ended.');
        break;
      case 'notice':
      case 'error':
        break;
    }
  }

  private written(socket: WebSocket, bytes: number): void {
    this.received += bytes;
    if (this.received - this.acked < ACK_EVERY || socket.readyState !== WebSocket.OPEN) return;
    this.acked = this.received;
    socket.send(encodeClientMessage({ type: 'ack', bytes: this.received }));
  }

  private resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    const term = this.terminal();
    if (term.cols !== cols || term.rows !== rows) term.resize(cols, rows);
    this.fit();
  }

  /**
   * The font that fits the PTY's columns in the page's width: estimated,
   * then corrected from the width xterm drew (a few passes at most).
   */
  private fit(passes = 3): void {
    const term = this.term;
    if (!term) return;
    const width = this.screen.clientWidth - 8;
    const font = term.options.fontSize ?? FONT_MAX;
    const drawn = this.screen.querySelector<HTMLElement>('.xterm-screen')?.offsetWidth ?? 0;
    const exact = drawn > 0 ? (font * width) / drawn : width / (this.size.cols * CELL_WIDTH_RATIO);
    const next = Math.max(FONT_MIN, Math.min(FONT_MAX, Math.floor(exact * 2) / 2));
    if (next === font) return;
    term.options.fontSize = next;
    if (passes > 1) requestAnimationFrame(() => this.fit(passes - 1));
  }

  private closed(code: number): void {
    if (this.ended) return;
    if (code === CloseCode.unauthorized) {
      this.fail('This link was revoked or has expired.');
      return;
    }
    if (code === CloseCode.unknownSession) {
      this.fail('The shared session has ended.');
      return;
    }
    this.setStatus('Connection lost; reconnecting…');
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, 15_000);
    setTimeout(() => void this.reconnect(), delay);
  }

  private async reconnect(): Promise<void> {
    const view = this.view;
    if (!view) return;
    try {
      this.view = await viewerApi.page(view.shareId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 0) {
        this.closed(0);
        return;
      }
      this.fail(explain(error));
      return;
    }
    this.connect();
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
    this.status.dataset.state = 'ok';
  }

  private fail(text: string): void {
    this.ended = true;
    this.status.textContent = text;
    this.status.dataset.state = 'error';
  }
}
