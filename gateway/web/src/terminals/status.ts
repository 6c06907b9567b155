//! Human wording for a terminal's or the session list's connection state, as
//! shown in the header (`connection-status`) and over a terminal.

import type { LinkState } from '../app/reconnect';
import type { TerminalState } from './connection';

export type StatusTone = 'ok' | 'busy' | 'warn' | 'error' | 'idle';

export interface StatusView {
  /** Stable machine-readable state, set as `data-state`. */
  state: string;
  label: string;
  tone: StatusTone;
}

function seconds(retryAt: number, now: number): string {
  const left = Math.max(0, Math.ceil((retryAt - now) / 1000));
  return left > 0 ? `retrying in ${left} s` : 'retrying';
}

/** Describes an ended session: "Session ended (exit code 0)". */
export function endedLabel(code: number | null, signal: string | null): string {
  if (signal) return `Session ended (signal ${signal})`;
  if (code !== null) return `Session ended (exit code ${code})`;
  return 'Session ended';
}

export function describeState(state: TerminalState | LinkState, now: number, reconnecting = false): StatusView {
  switch (state.kind) {
    case 'connecting':
      return {
        state: 'connecting',
        label: reconnecting || state.attempt > 0 ? 'Reconnecting…' : 'Connecting…',
        tone: 'busy',
      };
    case 'open':
      return { state: 'connecting', label: 'Connecting…', tone: 'busy' };
    case 'attached':
      return { state: 'connected', label: 'Connected', tone: 'ok' };
    case 'waiting':
      if (state.reason === 'broker') {
        return { state: 'broker-unreachable', label: `Broker unreachable, ${seconds(state.retryAt, now)}`, tone: 'warn' };
      }
      if (state.reason === 'gateway') {
        return { state: 'reconnecting', label: `Gateway restarting, ${seconds(state.retryAt, now)}`, tone: 'warn' };
      }
      return { state: 'reconnecting', label: `Connection lost, ${seconds(state.retryAt, now)}`, tone: 'warn' };
    case 'ended':
      return { state: 'ended', label: endedLabel(state.code, state.signal), tone: 'idle' };
    case 'stopped':
      switch (state.reason) {
        case 'not-found':
          return { state: 'not-found', label: 'Session not found', tone: 'error' };
        case 'unauthorized':
          return { state: 'unauthorized', label: 'Logged out', tone: 'error' };
        case 'protocol':
          return { state: 'error', label: `Refused by the gateway (code ${state.code ?? '?'})`, tone: 'error' };
        default:
          return { state: 'detached', label: 'Detached', tone: 'idle' };
      }
  }
}

/** The session list's state: "Live" when its socket is open. */
export function describeFeed(state: LinkState, now: number): StatusView {
  if (state.kind === 'open') return { state: 'connected', label: 'Live', tone: 'ok' };
  return describeState(state, now);
}
