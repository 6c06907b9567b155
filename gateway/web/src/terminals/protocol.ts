//! The terminal and session-list WebSocket messages of docs/protocol.md:
//! decoding (with validation: a malformed message is reported, never trusted),
//! encoding, close codes, and the acknowledgement accounting that paces output.

import type { Session } from '../app/api';
import { realTimers, type Timers } from '../app/reconnect';
import { MAX_TERMINAL_DIMENSION } from '../generated/limits';
import type * as wire from '../generated/protocol';

export type { ClientMessage } from '../generated/protocol';

/**
 * Text messages of a terminal socket as decoded here; a `pong` is taken by
 * the liveness check (`app/reconnect.ts`) before decoding.
 */
export type ServerMessage = Exclude<wire.ServerMessage, { type: 'pong' }>;

/** Messages of the session-list socket (`/ws/events`), less the `pong`. */
export type EventMessage = Exclude<wire.EventMessage, { type: 'pong' }>;

/** Close codes and what they mean for the client. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooLarge: 1009,
  malformed: 4400,
  unauthorized: 4401,
  unknownSession: 4404,
  brokerUnreachable: 4503,
} as const;

/** Largest terminal dimension the gateway accepts. */
export const MAX_DIMENSION = MAX_TERMINAL_DIMENSION;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} is not an object`);
  }
  return value as Json;
}

function parseJson(text: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('message is not JSON');
  }
  return object(value, 'message');
}

function dimension(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_DIMENSION) {
    throw new ProtocolError(`${name} must be an integer in 1..=${MAX_DIMENSION}`);
  }
  return value;
}

function string(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new ProtocolError(`${name} must be a string`);
  return value;
}

/** Checks the fields the UI relies on; keeps the rest as sent. */
export function decodeSession(value: unknown): Session {
  const session = object(value, 'session');
  string(session.id, 'session.id');
  if (typeof session.name !== 'string') session.name = '';
  string(session.mode, 'session.mode');
  string(session.status, 'session.status');
  for (const field of ['createdAt', 'lastActive'] as const) {
    if (typeof session[field] !== 'number') throw new ProtocolError(`session.${field} must be a number`);
  }
  return session as unknown as Session;
}

/** Decodes one text frame of a terminal socket. */
export function decodeServerMessage(text: string): ServerMessage {
  const message = parseJson(text);
  switch (message.type) {
    case 'attached':
    case 'session':
      return { type: message.type, session: decodeSession(message.session) };
    case 'reset':
      return { type: 'reset', cols: dimension(message.cols, 'cols'), rows: dimension(message.rows, 'rows') };
    case 'notice':
      return { type: 'notice', text: string(message.text, 'text') };
    case 'exit': {
      const code = message.code;
      const signal = message.signal;
      if (code !== null && code !== undefined && (typeof code !== 'number' || !Number.isInteger(code))) {
        throw new ProtocolError('exit code must be an integer or null');
      }
      if (signal !== null && signal !== undefined && typeof signal !== 'string' && typeof signal !== 'number') {
        throw new ProtocolError('exit signal must be a string or null');
      }
      return {
        type: 'exit',
        code: typeof code === 'number' ? code : null,
        signal: signal === null || signal === undefined ? null : String(signal),
      };
    }
    case 'error':
      return { type: 'error', message: string(message.message, 'message') };
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(message.type)}`);
  }
}

/** Decodes one frame of the session-list socket. */
export function decodeEventMessage(text: string): EventMessage {
  const message = parseJson(text);
  switch (message.type) {
    case 'sessions': {
      if (!Array.isArray(message.sessions)) throw new ProtocolError('sessions must be an array');
      return { type: 'sessions', sessions: message.sessions.map(decodeSession) };
    }
    case 'created':
    case 'updated':
    case 'ended':
    case 'removed':
      return { type: message.type, session: decodeSession(message.session) };
    default:
      throw new ProtocolError(`unknown event type ${JSON.stringify(message.type)}`);
  }
}

/** Encodes a control message, clamping sizes into the accepted range. */
export function encodeClientMessage(message: wire.ClientMessage): string {
  if (message.type === 'resize') {
    const size = { type: 'resize', cols: clampDimension(message.cols), rows: clampDimension(message.rows) };
    return JSON.stringify(message.fit ? { ...size, fit: true } : size);
  }
  if (message.type === 'ack') {
    if (!Number.isSafeInteger(message.bytes) || message.bytes < 0) throw new RangeError('ack bytes must be a non-negative integer');
  }
  return JSON.stringify(message);
}

export function clampDimension(value: number): number {
  if (!Number.isFinite(value)) return 1;
  return Math.min(MAX_DIMENSION, Math.max(1, Math.round(value)));
}

const encoder = new TextEncoder();

/** Terminal input (xterm's `onData`, UTF-16) as the UTF-8 bytes of a binary frame. */
export function encodeInput(data: string): Uint8Array {
  return encoder.encode(data);
}

/** xterm's `onBinary` data (one byte per char code) as raw bytes. */
export function encodeBinaryInput(data: string): Uint8Array {
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
  return bytes;
}

/**
 * Counts the binary bytes of one socket that reached the emulator and sends
 * cumulative `ack`s: at once when `step` bytes are unacknowledged (well under
 * the protocol's 128 KiB), otherwise `delayMs` after the last write so a
 * quiet terminal is fully acknowledged.
 */
export class AckTracker {
  private received = 0;
  private written = 0;
  private acked = 0;
  private timer: unknown = null;
  private closed = false;

  constructor(
    private readonly send: (bytes: number) => void,
    private readonly timers: Timers = realTimers,
    private readonly step = 32 * 1024,
    private readonly delayMs = 50,
  ) {}

  /** Bytes received from the socket so far. */
  get receivedBytes(): number {
    return this.received;
  }

  /** Bytes written to the emulator so far. */
  get writtenBytes(): number {
    return this.written;
  }

  /** Bytes acknowledged to the gateway so far. */
  get ackedBytes(): number {
    return this.acked;
  }

  /** A binary frame of `bytes` arrived (and was queued for the emulator). */
  onReceived(bytes: number): void {
    this.received += bytes;
  }

  /** The emulator finished processing `bytes` of received output. */
  onWritten(bytes: number): void {
    if (this.closed) return;
    this.written = Math.min(this.received, this.written + bytes);
    if (this.written - this.acked >= this.step) {
      this.flush();
    } else if (this.timer === null && this.written > this.acked) {
      this.timer = this.timers.setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.delayMs);
    }
  }

  /** Sends the pending acknowledgement now, if any. */
  flush(): void {
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.closed || this.written <= this.acked) return;
    this.acked = this.written;
    this.send(this.acked);
  }

  /** The socket is gone: nothing more is sent. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
