// Test doubles: a clock with manual time and a scriptable WebSocket.
import type { SocketLike, Timers } from '../../src/app/reconnect';

export class FakeTimers implements Timers {
  time = 0;
  private nextId = 1;
  private pending = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get count(): number {
    return this.pending.size;
  }

  /** Moves time forward, running due timers in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let nextId: number | null = null;
      let nextAt = Infinity;
      for (const [id, timer] of this.pending) {
        if (timer.at <= end && timer.at < nextAt) {
          nextAt = timer.at;
          nextId = id;
        }
      }
      if (nextId === null) break;
      const timer = this.pending.get(nextId)!;
      this.pending.delete(nextId);
      this.time = timer.at;
      timer.callback();
    }
    this.time = end;
  }
}

export class FakeSocket implements SocketLike {
  binaryType = 'blob';
  /** As a browser's WebSocket: 0 connecting, 1 open, 2 closing, 3 closed. */
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: (string | Uint8Array | ArrayBuffer)[] = [];
  closedWith: number | null = null;

  constructor(readonly url: string) {}

  send(data: string | ArrayBuffer | Uint8Array): void {
    this.sent.push(data);
  }

  close(code?: number): void {
    this.closedWith = code ?? 1005;
    this.readyState = 2;
  }

  /** The text frames sent, parsed. */
  get controls(): Record<string, unknown>[] {
    return this.sent.filter((data): data is string => typeof data === 'string').map((text) => JSON.parse(text));
  }

  serverOpen(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  serverText(message: unknown): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  serverBinary(bytes: number[] | Uint8Array): void {
    const array = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    this.onmessage?.({ data: array.buffer.slice(array.byteOffset, array.byteOffset + array.byteLength) });
  }

  /** The socket started closing; its close event has not come yet. */
  closing(): void {
    this.readyState = 2;
  }

  serverClose(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

/** Collects the sockets a client creates. */
export function socketFactory(): { sockets: FakeSocket[]; create: (url: string) => FakeSocket; last: () => FakeSocket } {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    create: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    last: () => {
      const socket = sockets[sockets.length - 1];
      if (!socket) throw new Error('no socket was created');
      return socket;
    },
  };
}

/** Lets pending promise callbacks run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A page location for modules that build URLs from it. */
export function fakeLocation(): void {
  (globalThis as unknown as { location: unknown }).location = { protocol: 'http:', host: '127.0.0.1:3000' };
}

export function session(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, name: id, mode: 'shell', status: 'running', cols: 80, rows: 24, createdAt: 1000, lastActive: 2000, viewers: 1, ...extra };
}
