//! Whether this browser is logged in. The credential itself is an HttpOnly
//! cookie the page never sees: this module only logs in and out, asks the
//! gateway whether the cookie is good (`GET /api/auth`, which answers without
//! a refusal, so a page load logs no error), and tells listeners when any
//! request or socket finds it revoked or expired.

import type { AuthStatus } from '../generated/protocol';
import { ApiError, request } from './api';

export type AuthState = 'unknown' | 'in' | 'out';
type Listener = (state: AuthState) => void;

class Auth {
  private current: AuthState = 'unknown';
  private readonly listeners = new Set<Listener>();

  get state(): AuthState {
    return this.current;
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Asks the gateway whether the cookie is valid. A client refused for too
   * many wrong keys (429) is logged out; a network failure is thrown to the
   * caller.
   */
  async check(): Promise<AuthState> {
    try {
      const status = await request<AuthStatus>('GET', '/api/auth');
      this.set(status.authenticated ? 'in' : 'out');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 429) throw error;
      this.set('out');
    }
    return this.current;
  }

  /** Logs in with the key; throws `ApiError` (401 wrong key, 429 rate limited). */
  async login(key: string): Promise<void> {
    await request('POST', '/api/login', { key });
    this.set('in');
  }

  /** Revokes the cookie on the gateway, then forgets the login locally. */
  async logout(): Promise<void> {
    try {
      await request('POST', '/api/logout');
    } finally {
      this.set('out');
    }
  }

  /** Called when a request or socket was refused for missing credentials. */
  lost(): void {
    this.set('out');
  }

  private set(state: AuthState): void {
    if (state === this.current) return;
    this.current = state;
    for (const listener of [...this.listeners]) listener(state);
  }
}

export const auth = new Auth();
