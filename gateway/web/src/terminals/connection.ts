//! One attached terminal: the `/ws/sessions/{id}` socket with reconnection,
//! control-message decoding and acknowledgements. It knows nothing of the
//! emulator: output and resets go to a `TerminalSink`, which calls `done` once
//! the emulator has processed a chunk so the bytes are acknowledged.
//!
//! Input is sent only while attached. Input that arrives while the link is
//! down is dropped, never kept for later (a command typed blind must not run
//! minutes afterwards when the connection comes back), and the sink is told
//! at once (`droppedInput`) so the user sees it; the count goes back to zero
//! when the terminal is attached again or the session ends.
//!
//! Output is compressed when the gateway agrees (the `dispatch.deflate-raw`
//! subprotocol, see `inflate.ts`): frames are then decoded one after another
//! and every message, text or binary, is handled in arrival order once the
//! output before it has been decoded.

import { ApiError, sessionsApi, socketUrl, type Session } from '../app/api';
import {
  GATEWAY_LIVENESS,
  ReconnectingSocket,
  type Liveness,
  type Backoff,
  type LinkState,
  type ProbeResult,
  type SocketLike,
  type Timers,
  realTimers,
} from '../app/reconnect';
import { DEFLATE_PROTOCOL, FrameInflater, deflateSupported } from './inflate';
import { AckTracker, ProtocolError, decodeServerMessage, encodeClientMessage, type ClientMessage } from './protocol';

/** The link state, plus the session's end once the gateway reported it. */
export type TerminalState =
  | LinkState
  | { kind: 'attached' }
  | { kind: 'ended'; code: number | null; signal: string | null };

export interface TerminalSink {
  attached(session: Session): void;
  /** Reset the emulator to `cols` x `rows`; a replay of the screen follows. */
  reset(cols: number, rows: number): void;
  /** Write output to the emulator, then call `done`. */
  output(bytes: Uint8Array, done: () => void): void;
  session(session: Session): void;
  notice(text: string): void;
  refused(message: string): void;
  state(state: TerminalState): void;
  /**
   * How many inputs (keys, pastes) were dropped because the terminal was not
   * attached, since the link went down; 0 when that is over (attached again,
   * or the session ended).
   */
  droppedInput(count: number): void;
}

export interface TerminalConnectionOptions {
  sessionId: string;
  /** The viewer's size, sent when (re)connecting. */
  size(): { cols: number; rows: number } | null;
  sink: TerminalSink;
  createSocket?: (url: string) => SocketLike;
  probe?: () => Promise<ProbeResult>;
  timers?: Timers;
  backoff?: Backoff;
  /** How a silently dead socket is noticed (default: the gateway's ping). */
  liveness?: Liveness;
}

/** Asks the REST API what became of a session whose socket failed to open. */
export async function probeSession(sessionId: string): Promise<ProbeResult> {
  try {
    await sessionsApi.get(sessionId);
    return 'ok';
  } catch (error) {
    if (!(error instanceof ApiError)) return 'network';
    if (error.status === 401) return 'unauthorized';
    if (error.status === 404 || error.status === 400) return 'not-found';
    if (error.status === 503) return 'broker';
    return 'network';
  }
}

export class TerminalConnection {
  private readonly socket: ReconnectingSocket;
  private readonly timers: Timers;
  private acks: AckTracker | null = null;
  private ended: { code: number | null; signal: string | null } | null = null;
  private stateValue: TerminalState = { kind: 'connecting', attempt: 0 };
  private dropped = 0;
  /** The socket being opened or open. */
  private socketNow: SocketLike | null = null;
  /** The decoder of the open socket's compressed output, if it is compressed. */
  private inflater: FrameInflater | null = null;
  /** Messages of a compressed socket, handled in order. */
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly options: TerminalConnectionOptions) {
    this.timers = options.timers ?? realTimers;
    const create =
      options.createSocket ??
      ((url: string) => {
        const protocols = deflateSupported() ? [DEFLATE_PROTOCOL] : [];
        return new WebSocket(url, protocols) as unknown as SocketLike;
      });
    this.socket = new ReconnectingSocket({
      url: () => this.url(),
      createSocket: (url) => (this.socketNow = create(url)),
      probe: options.probe ?? (() => probeSession(options.sessionId)),
      timers: this.timers,
      backoff: options.backoff,
      liveness: options.liveness ?? GATEWAY_LIVENESS,
      onOpen: () => this.opened(),
      onMessage: (data) => this.received(data),
      onState: (state) => this.linkState(state),
    });
  }

  get state(): TerminalState {
    return this.stateValue;
  }

  /** Whether the open socket's output is compressed (for tests and diagnostics). */
  get compressed(): boolean {
    return this.inflater !== null;
  }

  /** Acknowledgement counters of the current socket (for tests and diagnostics). */
  get ackStats(): { received: number; written: number; acked: number } {
    const acks = this.acks;
    return { received: acks?.receivedBytes ?? 0, written: acks?.writtenBytes ?? 0, acked: acks?.ackedBytes ?? 0 };
  }

  start(): void {
    this.socket.start();
  }

  /** Inputs dropped since the link went down (see `TerminalSink.droppedInput`). */
  get droppedInputs(): number {
    return this.dropped;
  }

  /**
   * Sends terminal input; false when not connected: the input is dropped,
   * not queued, and the sink hears of it (unless the session has ended).
   */
  input(bytes: Uint8Array): boolean {
    if (this.stateValue.kind === 'attached' && this.socket.send(bytes)) return true;
    if (this.stateValue.kind !== 'ended') {
      this.dropped++;
      this.options.sink.droppedInput(this.dropped);
    }
    return false;
  }

  /** Tells the gateway this viewer's size; with `fit`, this viewer drives the PTY's size. */
  resize(cols: number, rows: number, fit = false): boolean {
    return this.sendControl(fit ? { type: 'resize', cols, rows, fit } : { type: 'resize', cols, rows });
  }

  /** Ends the session's process; an `exit` follows. */
  end(): boolean {
    return this.sendControl({ type: 'end' });
  }

  /** Checks at once that an open socket is still alive (see `ReconnectingSocket.checkNow`). */
  checkAlive(): void {
    this.socket.checkNow();
  }

  /** Reconnects at once when waiting, or again after a stop. */
  retry(): void {
    if (this.stateValue.kind === 'waiting') this.socket.retryNow();
    else if (this.stateValue.kind === 'stopped' && !this.ended) this.socket.restart();
  }

  /** Leaves the session running and closes the socket for good. */
  detach(): void {
    this.sendControl({ type: 'detach' });
    this.acks?.close();
    this.socket.dispose();
  }

  private url(): string {
    const size = this.options.size();
    const query = size ? `?cols=${size.cols}&rows=${size.rows}` : '';
    return socketUrl(`/ws/sessions/${encodeURIComponent(this.options.sessionId)}${query}`);
  }

  private sendControl(message: ClientMessage): boolean {
    if (this.stateValue.kind !== 'attached' && this.stateValue.kind !== 'open') return false;
    return this.socket.send(encodeClientMessage(message));
  }

  private opened(): void {
    this.acks?.close();
    this.acks = new AckTracker((bytes) => this.sendControl({ type: 'ack', bytes }), this.timers, 16 * 1024);
    this.closeInflater();
    const protocol = (this.socketNow as { protocol?: unknown } | null)?.protocol;
    if (protocol === DEFLATE_PROTOCOL) this.inflater = new FrameInflater();
  }

  private closeInflater(): void {
    this.inflater?.close();
    this.inflater = null;
    this.pending = Promise.resolve();
  }

  private received(data: string | ArrayBuffer): void {
    const inflater = this.inflater;
    if (inflater === null) {
      this.handle(data);
      return;
    }
    this.pending = this.pending.then(async () => {
      if (this.inflater !== inflater) return;
      if (typeof data === 'string') {
        this.handle(data);
        return;
      }
      let bytes: Uint8Array;
      try {
        bytes = await inflater.inflate(new Uint8Array(data));
      } catch (error) {
        if (this.inflater !== inflater) return;
        this.options.sink.refused(`unreadable compressed output: ${(error as Error).message}`);
        this.closeInflater();
        this.socket.checkNow();
        return;
      }
      if (this.inflater === inflater) this.output(bytes);
    });
  }

  private output(bytes: Uint8Array): void {
    const acks = this.acks;
    acks?.onReceived(bytes.length);
    this.options.sink.output(bytes, () => acks?.onWritten(bytes.length));
  }

  private handle(data: string | ArrayBuffer): void {
    if (typeof data !== 'string') {
      this.output(new Uint8Array(data));
      return;
    }
    let message;
    try {
      message = decodeServerMessage(data);
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.options.sink.refused(`unreadable message from the gateway: ${error.message}`);
        return;
      }
      throw error;
    }
    const sink = this.options.sink;
    switch (message.type) {
      case 'attached':
        this.socket.markHealthy();
        this.setState({ kind: 'attached' });
        sink.attached(message.session);
        break;
      case 'reset':
        sink.reset(message.cols, message.rows);
        break;
      case 'session':
        sink.session(message.session);
        break;
      case 'notice':
        sink.notice(message.text);
        break;
      case 'error':
        sink.refused(message.message);
        break;
      case 'exit':
        this.ended = { code: message.code, signal: message.signal };
        this.acks?.flush();
        this.setState({ kind: 'ended', ...this.ended });
        break;
    }
  }

  private linkState(state: LinkState): void {
    if (state.kind !== 'open') {
      this.acks?.close();
      this.closeInflater();
    }
    // Once the process ended there is nothing to reconnect to: the state
    // stays `ended` whatever the closing socket does.
    if (this.ended) {
      if (state.kind === 'waiting') this.socket.dispose();
      return;
    }
    this.setState(state);
  }

  private setState(state: TerminalState): void {
    this.stateValue = state;
    this.options.sink.state(state);
    if ((state.kind === 'attached' || state.kind === 'ended') && this.dropped > 0) {
      this.dropped = 0;
      this.options.sink.droppedInput(0);
    }
  }
}
