//! The conversation browser's REST calls and types (docs/protocol.md,
//! "Conversations"), and resuming a conversation in a new claude session.

import { ApiError, request, type Session } from '../app/api';

export interface Tokens {
  input: number;
  output: number;
  cacheCreation: number;
  cacheRead: number;
}

export interface Conversation {
  id: string;
  project: string;
  title: string;
  createdAt: number;
  lastActivity: number;
  status: 'active' | 'recent' | 'idle';
  messageCount: number;
  models: string[];
  tokens: Tokens;
  toolUses: Record<string, number>;
  subagents: { agentId: string; messageCount: number; tokens: Tokens }[];
  sizeBytes: number;
  gitBranch: string;
  damagedLines: number;
  /** Estimated cost in USD (subagents included) of the models with a price. */
  costUsd: number;
  /** Models used that have no price (left out of `costUsd`). */
  unpricedModels: string[];
  /** The last response's input plus cache tokens, its window and model. */
  context?: { tokens: number; window: number; model: string };
}

export interface ToolResult {
  toolUseId: string;
  text: string;
  isError: boolean;
  truncated: boolean;
  sizeBytes: number;
  images: ImageBlock[];
}

export interface ImageBlock {
  type: 'image';
  mediaType: string;
  data: string | null;
  sizeBytes: number;
}

export type Block =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string }
  | { type: 'tool_call'; id: string; name: string; summary: string; input: string; inputTruncated: boolean; result: ToolResult | null }
  | ImageBlock
  | ({ type: 'tool_result' } & ToolResult);

export interface Message {
  index: number;
  uuid: string;
  role: 'user' | 'assistant' | 'system';
  timestamp: number;
  model: string | null;
  isMeta: boolean;
  isCompactSummary: boolean;
  blocks: Block[];
}

export interface ConversationPage {
  conversations: Conversation[];
  total: number;
  nextCursor: string | null;
}

export interface MessagePage {
  messages: Message[];
  total: number;
  beforeCursor: string | null;
  afterCursor: string | null;
}

export interface SearchHit {
  conversationId: string;
  title: string;
  project: string;
  messageIndex: number;
  role: string;
  snippet: string;
  timestamp: number;
}

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export function listConversations(params: { q?: string; project?: string; cursor?: string | null; limit?: number }): Promise<ConversationPage> {
  return request('GET', `/api/conversations${query({ limit: 50, ...params })}`);
}

export function getConversation(id: string): Promise<Conversation> {
  return request('GET', `/api/conversations/${encodeURIComponent(id)}`);
}

export function getMessages(id: string, params: { cursor?: string | null; from?: 'end'; limit?: number }): Promise<MessagePage> {
  return request('GET', `/api/conversations/${encodeURIComponent(id)}/messages${query({ limit: 40, ...params })}`);
}

export async function search(q: string, conversation?: string, limit?: number): Promise<SearchHit[]> {
  const answer = await request<{ hits: SearchHit[] }>('GET', `/api/search${query({ q, conversation, limit })}`);
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
  const body = { mode: 'claude', name: `resume ${conversation.title}`.slice(0, 120), claudeArgs: ['--resume', conversation.id] };
  if (conversation.project) {
    try {
      return { session: await request<Session>('POST', '/api/sessions', { ...body, cwd: conversation.project }), folderMissing: false };
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 400) throw error;
    }
  }
  return { session: await request<Session>('POST', '/api/sessions', body), folderMissing: Boolean(conversation.project) };
}
