//! A WebSocket that reconnects by itself with exponential backoff, reading the
//! gateway's close codes (docs/protocol.md) to decide between retrying,
//! stopping and asking for a new login. Browsers hide why an upgrade was
//! refused, so when a socket fails before opening, an optional `probe` (a
//! REST request) tells a revoked login or an unknown session from a network
//! failure. A network that drops silently (a phone changing networks, a
//! laptop waking up) leaves a socket that never closes: with `liveness`, a
//! socket that takes too long to open, or stays silent after a ping, is
//! given up and replaced. Timers and the socket constructor are injected for
//! tests.

/** The timer functions the client uses, injectable for tests. */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface BackoffOptions {
  /** First delay. */
  initialMs: number;
  /** Largest delay. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** Fraction of each delay taken off at random, so clients do not retry in step. */
  jitter: number;
  random: () => number;
}

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to 10 s by default. */
export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { initialMs: 500, maxMs: 10_000, factor: 2, jitter: 0.3, random: Math.random, ...options };
  }

  /** Failed attempts since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; each call grows the next one. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.options;
    const base = Math.min(maxMs, initialMs * factor ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(base * (1 - jitter * random()));
  }

  /** A connection succeeded: start again from the first delay. */
  reset(): void {
    this.attempt = 0;
  }
}

/** The part of the browser's WebSocket this module uses. */
export interface SocketLike {
  binaryType: string;
  /** 1 while open; a closing socket (2) discards what it is given. Absent: judged by events only. */
  readonly readyState?: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** What a REST probe learned after a socket failed to open. */
export type ProbeResult = 'ok' | 'unauthorized' | 'not-found' | 'broker' | 'network';

export type WaitReason = 'network' | 'broker' | 'gateway';
export type StopReason = 'closed' | 'not-found' | 'unauthorized' | 'protocol' | 'disposed';

export type LinkState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open' }
  | { kind: 'waiting'; reason: WaitReason; retryAt: number; attempt: number }
  | { kind: 'stopped'; reason: StopReason; code: number | null };

/** How a silently dead connection is noticed. */
export interface Liveness {
  /** After this long without a message, a ping is sent. */
  idleMs: number;
  /** A socket that receives nothing this long after a ping is dead. */
  timeoutMs: number;
  /** A socket not open after this long is given up. */
  connectTimeoutMs: number;
  /** The ping message; the gateway answers it. */
  ping: string;
  /** Whether a message is the answer to a ping (not passed on). */
  isPong(data: string | ArrayBuffer): boolean;
}

/** `WebSocket.OPEN`. */
const OPEN = 1;

const PING = JSON.stringify({ type: 'ping' });

/** Pings after 15 s of silence, 10 s for an answer, 15 s to open; `{"type":"ping"}` and `pong` (docs/protocol.md). */
export const GATEWAY_LIVENESS: Liveness = {
  idleMs: 15_000,
  timeoutMs: 10_000,
  connectTimeoutMs: 15_000,
  ping: PING,
  isPong: (data) => typeof data === 'string' && data.length < 32 && /^\{\s*"type"\s*:\s*"pong"\s*\}$/.test(data),
};

export interface ReconnectingSocketOptions {
  url(): string;
  createSocket?(url: string): SocketLike;
  probe?(): Promise<ProbeResult>;
  onOpen?(): void;
  onMessage(data: string | ArrayBuffer): void;
  onState(state: LinkState): void;
  timers?: Timers;
  backoff?: Backoff;
  liveness?: Liveness;
}

type Outcome = { stop: StopReason } | { wait: WaitReason };
type Decision = Outcome | 'probe';

/** What a close code asks the client to do. */
export function decideOnClose(code: number, opened: boolean): Decision {
  switch (code) {
    case 1000:
      return { stop: 'closed' };
    case 1001:
      return { wait: 'gateway' };
    case 1009:
    case 4400:
      return { stop: 'protocol' };
    case 4401:
      return { stop: 'unauthorized' };
    case 4404:
      return { stop: 'not-found' };
    case 4503:
      return { wait: 'broker' };
    default:
      return opened ? { wait: 'network' } : 'probe';
  }
}

function decideOnProbe(result: ProbeResult): Outcome {
  switch (result) {
    case 'unauthorized':
      return { stop: 'unauthorized' };
    case 'not-found':
      return { stop: 'not-found' };
    case 'broker':
      return { wait: 'broker' };
    default:
      return { wait: 'network' };
  }
}

export class ReconnectingSocket {
  private socket: SocketLike | null = null;
  private generation = 0;
  private timer: unknown = null;
  /** The liveness timer: connect deadline, idle check or ping deadline. */
  private watchdog: unknown = null;
  private lastReceived = 0;
  /** Messages received on the current socket. */
  private received = 0;
  /** The unanswered ping: messages received before it. */
  private ping: { received: number } | null = null;
  private state: LinkState = { kind: 'connecting', attempt: 0 };
  private readonly timers: Timers;
  private readonly backoff: Backoff;

  constructor(private readonly options: ReconnectingSocketOptions) {
    this.timers = options.timers ?? realTimers;
    this.backoff = options.backoff ?? new Backoff();
  }

  get current(): LinkState {
    return this.state;
  }

  get isOpen(): boolean {
    return this.state.kind === 'open';
  }

  /** Opens the first connection. */
  start(): void {
    this.connect();
  }

  /** The connection proved healthy (first good message): reset the backoff. */
  markHealthy(): void {
    this.backoff.reset();
  }

  /** Sends on the open socket; false when there is none (or it is already closing). */
  send(data: string | Uint8Array): boolean {
    if (this.state.kind !== 'open' || !this.socket) return false;
    if (this.socket.readyState !== undefined && this.socket.readyState !== OPEN) return false;
    this.socket.send(data);
    return true;
  }

  /** While waiting to reconnect, try at once (e.g. the network came back). */
  retryNow(): void {
    if (this.state.kind !== 'waiting') return;
    this.clearTimer();
    this.connect();
  }

  /**
   * Makes sure the open socket is alive (the network came back, the page
   * became visible again): a ping that must be answered within `timeoutMs`.
   */
  checkNow(timeoutMs = 5000): void {
    const liveness = this.options.liveness;
    if (!liveness || this.state.kind !== 'open' || !this.socket || this.ping) return;
    this.sendPing(liveness, timeoutMs);
  }

  /** Reconnect even after a stop (e.g. the user asked to retry). */
  restart(): void {
    if (this.state.kind === 'stopped' && this.state.reason === 'disposed') return;
    this.clearTimer();
    this.detachSocket()?.close(1000);
    this.backoff.reset();
    this.connect();
  }

  /** Closes for good; no more callbacks. */
  dispose(code = 1000): void {
    this.clearTimer();
    this.clearWatchdog();
    this.detachSocket()?.close(code);
    this.setState({ kind: 'stopped', reason: 'disposed', code: null });
  }

  private connect(): void {
    const generation = ++this.generation;
    this.setState({ kind: 'connecting', attempt: this.backoff.attempts });
    let opened = false;
    let socket: SocketLike;
    try {
      const create = this.options.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
      socket = create(this.options.url());
    } catch {
      this.afterClose(generation, 1006, false);
      return;
    }
    this.socket = socket;
    socket.binaryType = 'arraybuffer';
    const liveness = this.options.liveness;
    if (liveness) this.arm(liveness.connectTimeoutMs, () => this.giveUp());
    socket.onopen = () => {
      if (generation !== this.generation) return;
      opened = true;
      this.lastReceived = this.timers.now();
      this.received = 0;
      this.ping = null;
      if (liveness) this.arm(liveness.idleMs, () => this.checkIdle(liveness));
      this.setState({ kind: 'open' });
      this.options.onOpen?.();
    };
    socket.onmessage = (event) => {
      if (generation !== this.generation) return;
      this.lastReceived = this.timers.now();
      this.received++;
      const data = event.data;
      if (typeof data !== 'string' && !(data instanceof ArrayBuffer)) return;
      if (liveness?.isPong(data)) return;
      this.options.onMessage(data);
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (generation !== this.generation) return;
      this.socket = null;
      this.clearWatchdog();
      this.ping = null;
      this.afterClose(generation, event.code, opened);
    };
  }

  /** The idle check: ping after a quiet spell, else look again when it would be one. */
  private checkIdle(liveness: Liveness): void {
    const quiet = this.timers.now() - this.lastReceived;
    if (quiet < liveness.idleMs) {
      this.arm(liveness.idleMs - quiet, () => this.checkIdle(liveness));
      return;
    }
    this.sendPing(liveness, liveness.timeoutMs);
  }

  private sendPing(liveness: Liveness, timeoutMs: number): void {
    this.ping = { received: this.received };
    this.socket?.send(liveness.ping);
    this.arm(timeoutMs, () => this.checkPing(liveness));
  }

  /** The ping's deadline: anything received since it proves the socket alive. */
  private checkPing(liveness: Liveness): void {
    const ping = this.ping;
    if (!ping) return;
    if (this.received > ping.received) {
      this.ping = null;
      this.checkIdle(liveness);
      return;
    }
    this.giveUp();
  }

  /**
   * A socket that does not open or answer: forget it (its close handshake
   * may never finish) and reconnect as after a lost connection.
   */
  private giveUp(): void {
    this.clearWatchdog();
    this.detachSocket()?.close(1000);
    this.follow({ wait: 'network' }, 1006);
  }

  private arm(ms: number, callback: () => void): void {
    if (this.watchdog !== null) this.timers.clearTimeout(this.watchdog);
    const generation = this.generation;
    this.watchdog = this.timers.setTimeout(() => {
      this.watchdog = null;
      if (generation === this.generation) callback();
    }, ms);
  }

  private clearWatchdog(): void {
    if (this.watchdog !== null) this.timers.clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private afterClose(generation: number, code: number, opened: boolean): void {
    const decision = decideOnClose(code, opened);
    if (decision !== 'probe') {
      this.follow(decision, code);
      return;
    }
    if (!this.options.probe) {
      this.follow({ wait: 'network' }, code);
      return;
    }
    this.options.probe().then(
      (result) => generation === this.generation && this.follow(decideOnProbe(result), code),
      () => generation === this.generation && this.follow({ wait: 'network' }, code),
    );
  }

  private follow(decision: Outcome, code: number): void {
    if (this.state.kind === 'stopped' && this.state.reason === 'disposed') return;
    if ('stop' in decision) {
      this.setState({ kind: 'stopped', reason: decision.stop, code });
      return;
    }
    const delay = this.backoff.next();
    const generation = this.generation;
    this.setState({ kind: 'waiting', reason: decision.wait, retryAt: this.timers.now() + delay, attempt: this.backoff.attempts });
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (generation === this.generation) this.connect();
    }, delay);
  }

  private detachSocket(): SocketLike | null {
    this.generation++;
    this.clearWatchdog();
    this.ping = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onerror = null;
      socket.onclose = null;
    }
    return socket;
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private setState(state: LinkState): void {
    this.state = state;
    this.options.onState(state);
  }
}
