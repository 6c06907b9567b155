//! The gateway's REST API (docs/protocol.md): one `request` helper that every
//! view uses, typed errors, and the session routes. A 401 from any route but
//! login tells the auth module that the credentials are gone.

import type { CreateSessionRequest, ErrorBody, Session, SessionList } from '../generated/protocol';
import { auth } from './auth';

export type { Session, SessionMode } from '../generated/protocol';

/** An error answered by the gateway (or the network failing to reach it). */
export class ApiError extends Error {
  /** HTTP status; 0 when the gateway could not be reached. */
  readonly status: number;
  /** Seconds to wait, from `Retry-After` on a 429. */
  readonly retryAfter: number | null;

  constructor(status: number, message: string, retryAfter: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Sends one JSON request to the gateway and decodes the JSON answer. */
export async function request<T>(method: Method, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  if (response.ok) {
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
  const error = await errorFrom(response);
  if (error.status === 401 && path !== '/api/login') auth.lost();
  throw error;
}

/** The error a failed response carries: its JSON `error`, else its status text. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as Partial<ErrorBody>;
    if (typeof body.error === 'string' && body.error) message = body.error;
  } catch {
    // Not JSON: keep the status text.
  }
  const retry = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  return new ApiError(response.status, message, Number.isFinite(retry) ? retry : null);
}

/** The WebSocket URL for a gateway path, on the page's own origin. */
export function socketUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

export const sessionsApi = {
  list: async (): Promise<Session[]> => (await request<SessionList>('GET', '/api/sessions')).sessions,
  get: (id: string): Promise<Session> => request<Session>('GET', `/api/sessions/${encodeURIComponent(id)}`),
  create: (options: CreateSessionRequest): Promise<Session> =>
    request<Session>('POST', '/api/sessions', options),
  rename: (id: string, name: string): Promise<Session> =>
    request<Session>('PATCH', `/api/sessions/${encodeURIComponent(id)}`, { name }),
  end: (id: string): Promise<Session> => request<Session>('DELETE', `/api/sessions/${encodeURIComponent(id)}`),
};
