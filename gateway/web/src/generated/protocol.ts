// Generated from gateway/src/protocol/ (the Rust types are the definition); do not edit.
// Regenerate with DISPATCH_UPDATE_GENERATED=1 cargo nextest run -p dispatch-gateway --test generated

/**
 * The JSON body of an error answer.
 */
export type ErrorBody = { 
/**
 * A sentence for people.
 */
error: string, };

/**
 * `POST /api/login`: answered `204` with the login cookie, or `401`.
 */
export type LoginRequest = { 
/**
 * The access key.
 */
key: string, };

/**
 * `GET /public-url`.
 */
export type PublicUrl = { 
/**
 * The tunnel's public URL; `null` while there is none.
 */
url: string | null, };

/**
 * `GET /healthz` (`ok`) and `GET /readyz` (`ready`).
 */
export type Health = { status: string, };

/**
 * What a session runs.
 */
export type SessionMode = "shell" | "claude";

/**
 * Whether a session's process is still alive.
 */
export type SessionStatus = "running" | "exited";

/**
 * Why a session needs its user; cleared when someone types into it.
 */
export type Attention = { 
/**
 * `bell`, `notification`, ...
 */
reason: string, 
/**
 * The notification's text, or `Bell`.
 */
title: string, 
/**
 * Unix epoch milliseconds.
 */
at: number, };

/**
 * A session (timestamps in Unix epoch milliseconds).
 */
export type Session = { 
/**
 * A UUID.
 */
id: string, name: string, 
/**
 * The mode that actually runs.
 */
mode: SessionMode, requestedMode: SessionMode, 
/**
 * Why `mode` differs from `requestedMode`.
 */
fallbackReason: string | null, status: SessionStatus, cols: number, rows: number, createdAt: number, 
/**
 * The last input or output.
 */
lastActive: number, endedAt: number | null, exitCode: number | null, exitSignal: string | null, 
/**
 * Attached terminal sockets.
 */
viewers: number, 
/**
 * The working directory it started in.
 */
cwd: string, metadata: { [key in string]: string }, 
/**
 * Set while the session needs its user.
 */
attention: Attention | null, };

/**
 * `GET /api/sessions`.
 */
export type SessionList = { sessions: Array<Session>, };

/**
 * `POST /api/sessions`; every field may be left out.
 */
export type CreateSessionRequest = { 
/**
 * The broker's default when left out. Checked by the handler, which
 * names the modes in its refusal.
 */
mode?: SessionMode, 
/**
 * Clamped to the largest dimension; the broker's default when left out.
 */
cols?: number, rows?: number, name?: string, metadata?: { [key in string]: string }, 
/**
 * Arguments for `claude` (claude mode).
 */
claudeArgs?: Array<string>, 
/**
 * The working directory; it must exist.
 */
cwd?: string, };

/**
 * `PATCH /api/sessions/{id}`.
 */
export type RenameSessionRequest = { name: string, };

/**
 * A text message the gateway sends on a terminal socket.
 */
export type ServerMessage = { "type": "attached", session: Session, } | { "type": "reset", cols: number, rows: number, } | { "type": "session", session: Session, } | { "type": "notice", text: string, } | { "type": "exit", code: number | null, signal: string | null, } | { "type": "error", message: string, } | { "type": "pong" };

/**
 * A text message the browser sends on a terminal socket.
 */
export type ClientMessage = { "type": "resize", cols: number, rows: number, fit?: boolean, } | { "type": "ack", bytes: number, } | { "type": "detach" } | { "type": "end" } | { "type": "ping" };

/**
 * A message the gateway sends on the session-list socket.
 */
export type EventMessage = { "type": "sessions", sessions: Array<Session>, } | { "type": "created", session: Session, } | { "type": "updated", session: Session, } | { "type": "ended", session: Session, } | { "type": "removed", session: Session, } | { "type": "pong" };

/**
 * A message the browser sends on the session-list socket; anything else is ignored.
 */
export type EventClientMessage = { "type": "ping" };

/**
 * Token counts of a conversation, a subagent or one message.
 */
export type Tokens = { input: number, output: number, cacheCreation: number, cacheRead: number, };

/**
 * How recently a conversation was written to.
 */
export type ActivityStatus = "active" | "recent" | "idle";

/**
 * A subagent's transcript within a conversation.
 */
export type Subagent = { agentId: string, messageCount: number, tokens: Tokens, 
/**
 * Calls per tool name.
 */
toolUses: { [key in string]: number }, createdAt: number, lastActivity: number, sizeBytes: number, };

/**
 * The context window as of a conversation's last response.
 */
export type ConversationContext = { 
/**
 * The last response's input plus cache tokens.
 */
tokens: number, window: number, model: string, };

/**
 * A conversation's metadata (timestamps in Unix epoch milliseconds).
 */
export type Conversation = { id: string, 
/**
 * The working directory it ran in.
 */
project: string, title: string, createdAt: number, lastActivity: number, status: ActivityStatus, messageCount: number, models: Array<string>, tokens: Tokens, 
/**
 * Calls per tool name.
 */
toolUses: { [key in string]: number }, subagents: Array<Subagent>, sizeBytes: number, gitBranch: string, 
/**
 * The claude version that wrote it.
 */
version: string, 
/**
 * Transcript lines that could not be read.
 */
damagedLines: number, 
/**
 * Estimated cost in USD (subagents included) of the models with a price.
 */
costUsd: number, 
/**
 * Models used that have no price (left out of `costUsd`).
 */
unpricedModels: Array<string>, context: ConversationContext, };

/**
 * `GET /api/conversations`.
 */
export type ConversationPage = { conversations: Array<Conversation>, 
/**
 * Matches in all pages.
 */
total: number, 
/**
 * `cursor` of the next page; `null` on the last.
 */
nextCursor: string | null, };

/**
 * Who wrote a message.
 */
export type Role = "user" | "assistant" | "system";

/**
 * `Image::type`: always `"image"`.
 */
export type ImageType = "image";

/**
 * An image of a message or a tool result.
 */
export type Image = { type: ImageType, mediaType: string, 
/**
 * Base64; `null` when too large to send.
 */
data: string | null, sizeBytes: number, };

/**
 * What a tool answered.
 */
export type ToolResult = { toolUseId: string, text: string, isError: boolean, 
/**
 * `text` was cut; `sizeBytes` is the whole.
 */
truncated: boolean, sizeBytes: number, images: Array<Image>, };

/**
 * One block of a message's content.
 */
export type Block = { "type": "text", text: string, } | { "type": "thinking", thinking: string, } | { "type": "tool_call", id: string, name: string, summary: string, 
/**
 * The input as JSON text.
 */
input: string, inputTruncated: boolean, result: ToolResult | null, } | { "type": "tool_result" } & ToolResult | Image;

/**
 * One message of a conversation.
 */
export type Message = { 
/**
 * Its position in the conversation.
 */
index: number, uuid: string, role: Role, timestamp: number, model: string | null, 
/**
 * Context injected by claude rather than typed by the user.
 */
isMeta: boolean, isCompactSummary: boolean, usage: Tokens | null, blocks: Array<Block>, };

/**
 * `GET /api/conversations/{id}/messages`.
 */
export type MessagePage = { messages: Array<Message>, 
/**
 * Messages in the conversation.
 */
total: number, 
/**
 * `cursor` of the page before; `null` at the start.
 */
beforeCursor: string | null, 
/**
 * `cursor` of the page after; `null` at the end.
 */
afterCursor: string | null, };

/**
 * One search match.
 */
export type SearchHit = { conversationId: string, title: string, project: string, messageIndex: number, role: Role, snippet: string, timestamp: number, };

/**
 * `GET /api/search`.
 */
export type SearchResults = { hits: Array<SearchHit>, 
/**
 * `false` when the search ran out of time and `hits` is partial.
 */
complete: boolean, };

/**
 * The data of a live-feed event (`GET /api/conversations/events`); the
 * SSE event name is its `type`. The feed opens with a `ready` event
 * (data `{}`), and an `error` event (data an [`ErrorBody`](super::errors::ErrorBody)) ends it.
 */
export type FeedEvent = { "type": "changed", id: string, conversation: Conversation | null, } | { "type": "removed", id: string, };

/**
 * How `GET /api/conversations` sorts.
 */
export type ConversationSort = "activity" | "created";

/**
 * Which way a list runs.
 */
export type SortOrder = "asc" | "desc";

/**
 * Where an empty `cursor` starts a page of messages.
 */
export type MessagesFrom = "start" | "end";

/**
 * The query string of `GET /api/conversations`. The handler checks the
 * enumerated values itself, so that its refusal names the choices.
 */
export type ConversationQuery = { 
/**
 * An exact working directory.
 */
project?: string, 
/**
 * A case-insensitive substring of the title or project.
 */
q?: string, 
/**
 * Last activity at or after, epoch ms.
 */
since?: number, 
/**
 * Last activity before, epoch ms.
 */
until?: number, sort?: ConversationSort, order?: SortOrder, limit?: number, 
/**
 * A page's `nextCursor`.
 */
cursor?: string, };

/**
 * The query string of `GET /api/conversations/{id}/messages`.
 */
export type MessageQuery = { 
/**
 * A page's `beforeCursor` or `afterCursor`.
 */
cursor?: string, limit?: number, from?: MessagesFrom, 
/**
 * A subagent's transcript instead of the main one.
 */
agent?: string, };

/**
 * The query string of `GET /api/search`.
 */
export type SearchQuery = { 
/**
 * The text to find (required).
 */
q?: string, 
/**
 * Search this conversation only.
 */
conversation?: string, limit?: number, };

/**
 * How `GET /api/usage` groups its figures.
 */
export type GroupBy = "day" | "model" | "project";

/**
 * The query string of `GET /api/usage` and `GET /api/usage/export.csv`;
 * any other parameter is refused.
 */
export type UsageQuery = { 
/**
 * Epoch ms; usage is kept in 15-minute steps counted from their start.
 */
since?: number, until?: number, 
/**
 * Checked by the handler, whose refusal names the choices.
 */
groupBy?: GroupBy, 
/**
 * Where days begin: an IANA name, `UTC` or `+HH:MM`.
 */
tz?: string, 
/**
 * How many of the most expensive conversations to name.
 */
top?: number, };

/**
 * Token counts by kind.
 */
export type UsageTokens = { input: number, output: number, cacheWrite5m: number, cacheWrite1h: number, cacheRead: number, 
/**
 * The sum of the others.
 */
total: number, };

/**
 * One model's share of a group.
 */
export type ModelUsage = { model: string, tokens: UsageTokens, 
/**
 * `null` when the price table has no entry for the model.
 */
costUsd: number | null, priced: boolean, };

/**
 * The figures of one day, model or project (or of the whole period).
 */
export type UsageGroup = { 
/**
 * The day (`YYYY-MM-DD`), model or project.
 */
key: string, tokens: UsageTokens, 
/**
 * The priced models' cost.
 */
costUsd: number, models: Array<ModelUsage>, };

/**
 * One of the period's most expensive conversations.
 */
export type CostlyConversation = { id: string, title: string, project: string, 
/**
 * Within the period.
 */
costUsd: number, tokens: UsageTokens, 
/**
 * Some of its tokens have no price.
 */
unpriced: boolean, };

/**
 * `GET /api/usage`.
 */
export type UsageReport = { groups: Array<UsageGroup>, totals: UsageGroup, 
/**
 * Most expensive first.
 */
topConversations: Array<CostlyConversation>, priceTableVersion: string, unpricedModels: Array<string>, };

/**
 * Whether the proxy let a connection through.
 */
export type EgressDecision = "allowed" | "refused";

/**
 * One destination of a session.
 */
export type EgressHost = { host: string, port: number, decision: EgressDecision, 
/**
 * The last refusal's reason; `null` when allowed.
 */
reason: string | null, 
/**
 * Connections.
 */
count: number, bytesUp: number, bytesDown: number, 
/**
 * Unix epoch milliseconds of the last connection (or of the last tunnel's end).
 */
lastAt: number, };

/**
 * `GET /api/sessions/{id}/egress`.
 */
export type EgressReport = { sessionId: string, 
/**
 * Whether the egress proxy is on (`EGRESS_LISTEN`).
 */
enabled: boolean, 
/**
 * The most recent first.
 */
hosts: Array<EgressHost>, };

/**
 * `GET /api/push/key`'s answer.
 */
export type PushKey = { 
/**
 * The VAPID public key (uncompressed P-256, base64url): the
 * `applicationServerKey` of `PushManager.subscribe`.
 */
publicKey: string, };

/**
 * `POST /api/push/subscriptions`'s body: what `PushSubscription.toJSON()`
 * gives.
 */
export type NewSubscription = { endpoint: string, keys: SubscriptionKeys, 
/**
 * Ignored: push services tell an expired subscription by 404 or 410.
 */
expirationTime: number | null, };

/**
 * A subscription's keys (base64url).
 */
export type SubscriptionKeys = { p256dh: string, auth: string, };

/**
 * `POST /api/push/subscriptions`'s answer.
 */
export type Subscribed = { 
/**
 * How many subscriptions the gateway holds now.
 */
subscriptions: number, };

/**
 * `DELETE /api/push/subscriptions`'s body.
 */
export type Unsubscription = { endpoint: string, };

/**
 * What a push carries (encrypted) to the service worker: the session and
 * why it needs its user, never anything from its terminal.
 */
export type PushMessage = { 
/**
 * The session's id.
 */
session: string, 
/**
 * The session's name (may be empty).
 */
name: string, 
/**
 * `permission`, `input`, `bell` or `notification`.
 */
reason: string, };

/**
 * `POST /api/sessions/{id}/shares` body.
 */
export type CreateShare = { 
/**
 * Seconds until the link expires; at most `SHARE_MAX_TTL_SECS`, which
 * is also the default.
 */
expiresInSecs?: number, };

/**
 * One share link as its owner sees it.
 */
export type ShareInfo = { id: string, sessionId: string, 
/**
 * Unix epoch milliseconds.
 */
createdAt: number, 
/**
 * Unix epoch milliseconds.
 */
expiresAt: number, 
/**
 * Share viewers connected now.
 */
viewers: number, };

/**
 * `POST /api/sessions/{id}/shares` answer: the link, shown once.
 */
export type CreatedShare = { share: ShareInfo, 
/**
 * The link relative to the gateway's origin: `/share#<id>.<secret>`.
 * The secret is in the fragment, which browsers never send.
 */
path: string, };

/**
 * `GET /api/sessions/{id}/shares` answer.
 */
export type ShareList = { shares: Array<ShareInfo>, };

/**
 * `POST /api/shares/{share}/open` body: the secret from the link's fragment.
 */
export type OpenShare = { secret: string, };

/**
 * What a share viewer's page shows: `POST .../open` and `GET /api/shares/{share}`.
 */
export type SharedView = { shareId: string, 
/**
 * The shared session's name (may be empty).
 */
sessionName: string, 
/**
 * The machine the session runs on (the gateway's host name).
 */
host: string, 
/**
 * Always true: a share viewer never types into the session.
 */
readOnly: boolean, 
/**
 * Unix epoch milliseconds.
 */
expiresAt: number, 
/**
 * The terminal WebSocket's path.
 */
socket: string, };

/**
 * What a directory entry is.
 */
export type FileKind = "file" | "directory" | "symlink" | "other";

/**
 * One entry of a directory.
 */
export type FileEntry = { name: string, kind: FileKind, 
/**
 * Bytes (of the link itself for a symlink).
 */
size: number, 
/**
 * Unix epoch milliseconds of the last modification.
 */
modifiedAt: number, };

/**
 * `GET /api/sessions/{id}/files?path=`.
 */
export type FileList = { 
/**
 * The listed directory relative to the session's (`""` for itself).
 */
path: string, 
/**
 * Directories first, then by name.
 */
entries: Array<FileEntry>, 
/**
 * Whether entries were left out past the listing limit.
 */
truncated: boolean, };

/**
 * The answer to `PUT /api/sessions/{id}/files/content?path=`.
 */
export type UploadedFile = { 
/**
 * The written file relative to the session's directory.
 */
path: string, size: number, 
/**
 * Its absolute path, as a shell in the session names it.
 */
absolutePath: string, };

/**
 * `GET /api/auth`.
 */
export type AuthStatus = { 
/**
 * Whether the request's cookie (or bearer key) is good.
 */
authenticated: boolean, };
