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
