//! The conversation browser's REST calls and types (docs/protocol.md,
//! "Conversations"), and resuming a conversation in a new claude session.

import { ApiError, request, type Session } from '../app/api';
import type {
  Conversation,
  ConversationPage,
  ConversationQuery,
  CreateSessionRequest,
  MessagePage,
  MessageQuery,
  SearchHit,
  SearchQuery,
  SearchResults,
} from '../generated/protocol';

export type {
  Block,
  Conversation,
  ConversationPage,
  Image as ImageBlock,
  Message,
  MessagePage,
  SearchHit,
  Tokens,
  ToolResult,
} from '../generated/protocol';

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A query whose `cursor` may be `null` (the first page). */
type Paged<Q extends { cursor?: string }> = Omit<Q, 'cursor'> & { cursor?: string | null };

export function listConversations(params: Paged<ConversationQuery>): Promise<ConversationPage> {
  return request('GET', `/api/conversations${query({ limit: 50, ...params })}`);
}

export function getConversation(id: string): Promise<Conversation> {
  return request('GET', `/api/conversations/${encodeURIComponent(id)}`);
}

export function getMessages(id: string, params: Paged<MessageQuery>): Promise<MessagePage> {
  return request('GET', `/api/conversations/${encodeURIComponent(id)}/messages${query({ limit: 40, ...params })}`);
}

export async function search(q: string, conversation?: string, limit?: number): Promise<SearchHit[]> {
  const params: SearchQuery = { q, conversation, limit };
  const answer = await request<SearchResults>('GET', `/api/search${query(params)}`);
  return answer.hits;
}

export function exportUrl(id: string): string {
  return `/api/conversations/${encodeURIComponent(id)}/export.md`;
}

/**
 * Starts `claude --resume <id>` in a new session, in the conversation's
 * working directory when it still exists (else the session's own).
 */
export async function resume(conversation: Conversation): Promise<{ session: Session; folderMissing: boolean }> {
  const body: CreateSessionRequest = { mode: 'claude', name: `resume ${conversation.title}`.slice(0, 120), claudeArgs: ['--resume', conversation.id] };
  if (conversation.project) {
    try {
      return { session: await request<Session>('POST', '/api/sessions', { ...body, cwd: conversation.project }), folderMissing: false };
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) throw error;
    }
  }
  return { session: await request<Session>('POST', '/api/sessions', body), folderMissing: Boolean(conversation.project) };
}
