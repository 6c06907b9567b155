//! The live session list: the `/ws/events` socket (full list first, then one
//! change per message), kept as a map and reconnected with backoff.

import { ApiError, request, socketUrl, type Session } from '../app/api';
import {
  GATEWAY_LIVENESS,
  ReconnectingSocket,
  type Backoff,
  type LinkState,
  type Liveness,
  type ProbeResult,
  type SocketLike,
  type Timers,
} from '../app/reconnect';
import { ProtocolError, decodeEventMessage, type EventMessage } from './protocol';

export interface SessionFeedOptions {
  onChange(sessions: Session[]): void;
  onState(state: LinkState): void;
  createSocket?: (url: string) => SocketLike;
  probe?: () => Promise<ProbeResult>;
  timers?: Timers;
  backoff?: Backoff;
  liveness?: Liveness;
}

async function probeList(): Promise<ProbeResult> {
  try {
    await request('GET', '/api/sessions');
    return 'ok';
  } catch (error) {
    if (!(error instanceof ApiError)) return 'network';
    if (error.status === 401) return 'unauthorized';
    if (error.status === 503) return 'broker';
    return 'network';
  }
}

/** Applies one event to the list (exported for tests). */
export function applyEvent(sessions: Map<string, Session>, message: EventMessage): void {
  if (message.type === 'sessions') {
    sessions.clear();
    for (const session of message.sessions) sessions.set(session.id, session);
  } else if (message.type === 'removed') {
    sessions.delete(message.session.id);
  } else {
    sessions.set(message.session.id, message.session);
  }
}

/** Running sessions first, then newest first. */
export function sortSessions(sessions: Iterable<Session>): Session[] {
  return [...sessions].sort((a, b) => {
    const running = Number(b.status === 'running') - Number(a.status === 'running');
    return running || b.createdAt - a.createdAt || a.id.localeCompare(b.id);
  });
}

export class SessionFeed {
  private readonly sessions = new Map<string, Session>();
  private readonly socket: ReconnectingSocket;
  private loaded = false;

  constructor(private readonly options: SessionFeedOptions) {
    this.socket = new ReconnectingSocket({
      url: () => socketUrl('/ws/events'),
      createSocket: options.createSocket,
      probe: options.probe ?? probeList,
      timers: options.timers,
      backoff: options.backoff,
      liveness: options.liveness ?? GATEWAY_LIVENESS,
      onMessage: (data) => this.received(data),
      onState: (state) => options.onState(state),
    });
  }

  /** Whether the full list arrived at least once. */
  get ready(): boolean {
    return this.loaded;
  }

  get list(): Session[] {
    return sortSessions(this.sessions.values());
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  get state(): LinkState {
    return this.socket.current;
  }

  start(): void {
    this.socket.start();
  }

  /** Reconnects at once if waiting; checks an open socket is alive. */
  retry(): void {
    this.socket.retryNow();
    this.socket.checkNow();
  }

  /** Records a session learned from elsewhere (a REST answer) until the feed confirms it. */
  upsert(session: Session): void {
    this.sessions.set(session.id, session);
    this.options.onChange(this.list);
  }

  dispose(): void {
    this.socket.dispose();
  }

  private received(data: string | ArrayBuffer): void {
    if (typeof data !== 'string') return;
    let message: EventMessage;
    try {
      message = decodeEventMessage(data);
    } catch (error) {
      if (error instanceof ProtocolError) {
        console.warn('dispatch: ignored session event:', error.message);
        return;
      }
      throw error;
    }
    if (message.type === 'sessions') {
      this.loaded = true;
      this.socket.markHealthy();
    }
    applyEvent(this.sessions, message);
    this.options.onChange(this.list);
  }
}
