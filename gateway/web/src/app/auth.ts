//! Whether this browser is logged in. The credential itself is an HttpOnly
//! cookie the page never sees: this module only logs in and out, checks the
//! cookie with an authenticated request, and tells listeners when any request
//! or socket finds it revoked or expired.

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
   * Asks the gateway whether the cookie is valid. A broker outage (503) still
   * proves the cookie good; a network failure is thrown to the caller.
   */
  async check(): Promise<AuthState> {
    try {
      await request('GET', '/api/sessions');
      this.set('in');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0) throw error;
      this.set(error.status === 401 ? 'out' : 'in');
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
