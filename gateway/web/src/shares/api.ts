//! The share routes (docs/protocol.md, Share links). The owner's calls go
//! through the app's `request` (a 401 there means the login is gone); the
//! share page's calls have their own helper, since a share viewer has no
//! login and a 401 only means the link no longer opens.

import { ApiError, errorFrom, request } from '../app/api';
import type { CreateShare, CreatedShare, ShareInfo, ShareList, SharedView } from '../generated/protocol';

export type { CreatedShare, ShareInfo, SharedView } from '../generated/protocol';

const sessionShares = (sessionId: string): string => `/api/sessions/${encodeURIComponent(sessionId)}/shares`;

/** The session owner's side. */
export const sharesApi = {
  create: (sessionId: string, body: CreateShare): Promise<CreatedShare> => request<CreatedShare>('POST', sessionShares(sessionId), body),
  list: async (sessionId: string): Promise<ShareInfo[]> => (await request<ShareList>('GET', sessionShares(sessionId))).shares,
  revoke: (sessionId: string, shareId: string): Promise<void> =>
    request<void>('DELETE', `${sessionShares(sessionId)}/${encodeURIComponent(shareId)}`),
};

/** The share viewer's side: the secret for the cookie, then the page's data. */
export const viewerApi = {
  open: (shareId: string, secret: string): Promise<SharedView> =>
    viewerRequest('POST', `/api/shares/${encodeURIComponent(shareId)}/open`, { secret }),
  page: (shareId: string): Promise<SharedView> => viewerRequest('GET', `/api/shares/${encodeURIComponent(shareId)}`),
};

async function viewerRequest(method: 'GET' | 'POST', path: string, body?: unknown): Promise<SharedView> {
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
  if (response.ok) return (await response.json()) as SharedView;
  throw await errorFrom(response);
}

/** What a failed open or page request means to the viewer. */
export function explain(error: unknown): string {
  if (!(error instanceof ApiError)) return String(error);
  if (error.status === 0) return 'The server cannot be reached.';
  if (error.status === 401) return 'This link does not open: it is invalid, expired or revoked.';
  if (error.status === 410) return 'The shared session has ended.';
  if (error.status === 429) return `Too many attempts; try again in ${error.retryAfter ?? 60} s.`;
  return error.message;
}
