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
