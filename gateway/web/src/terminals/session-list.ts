//! The sidebar's list of sessions, kept current from the live feed: each
//! session's status dot (none while the feed is down), name, attention
//! badge, mode, exit or viewer count and times; ended sessions can be
//! dismissed from this browser's list (localStorage) until the broker drops
//! them.

import type { Session } from '../app/api';
import { attentionBadge } from '../app/attention';
import { h, icon } from '../app/dom';
import { absoluteTime, relativeTime } from '../app/format';
import type { SessionFeed } from './feed';

/** Ended sessions dismissed from this browser's list (until the broker drops them). */
const DISMISSED_KEY = 'dispatch.dismissedSessions';

/** A session's display name. */
export function sessionTitle(session: Session | null | undefined, id: string): string {
  const name = session?.name?.trim();
  return name ? name : `session ${id.slice(0, 8)}`;
}

function storedDismissed(): Set<string> {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(DISMISSED_KEY) ?? '[]');
    return new Set(Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : []);
  } catch {
    return new Set();
  }
}

/** What the list needs of the view around it. */
export interface SessionListHost {
  /** The session shown in the workspace. */
  activeId(): string | null;
  /** Whether the session has an open tab. */
  isOpen(id: string): boolean;
  /** The user picked the session. */
  open(id: string): void;
  /** The user dismissed an ended session. */
  dismissed(id: string): void;
}

export class SessionList {
  readonly list: HTMLUListElement = h('ul', { class: 'session-list', attrs: { 'aria-label': 'Sessions' } });
  readonly empty: HTMLElement = h('p', { class: 'list-empty', text: 'Loading sessions…' });
  private readonly items = new Map<string, HTMLLIElement>();
  private readonly dismissedIds = storedDismissed();

  constructor(
    private readonly feed: SessionFeed,
    private readonly host: SessionListHost,
  ) {}

  render(): void {
    // While the list is not live, its statuses may be stale: no green dots then.
    this.list.dataset.live = String(this.feed.state.kind === 'open');
    if (this.feed.ready && this.feed.state.kind === 'open') this.pruneDismissed();
    const sessions = this.feed.list.filter((session) => !(session.status === 'exited' && this.dismissedIds.has(session.id)));
    const seen = new Set<string>();
    for (const session of sessions) {
      seen.add(session.id);
      let item = this.items.get(session.id);
      if (!item) {
        item = h('li', { class: 'session-item', testid: 'session-item' });
        this.items.set(session.id, item);
      }
      this.fillItem(item, session);
      this.list.appendChild(item);
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    this.renderEmpty(sessions.length);
  }

  private renderEmpty(shown: number): void {
    const feedState = this.feed.state;
    this.empty.hidden = shown > 0;
    if (!this.feed.ready) {
      this.empty.textContent =
        feedState.kind === 'waiting' && feedState.reason === 'broker' ? 'The broker is unreachable.' : 'Loading sessions…';
    } else {
      this.empty.textContent = 'No sessions yet.';
    }
  }

  private fillItem(item: HTMLLIElement, session: Session): void {
    const active = session.id === this.host.activeId();
    item.dataset.sessionId = session.id;
    item.dataset.status = session.status;
    item.dataset.mode = session.mode;
    item.dataset.name = session.name ?? '';
    item.classList.toggle('active', active);
    item.classList.toggle('open', this.host.isOpen(session.id));
    const button = h(
      'button',
      {
        class: 'session-open',
        attrs: { type: 'button', 'aria-current': active ? 'true' : null },
        on: { click: () => this.host.open(session.id) },
      },
      h('span', {
        class: 'status-dot',
        attrs: {
          'data-status': session.status,
          'aria-label': this.feed.state.kind === 'open' ? session.status : `${session.status} (not connected: may be out of date)`,
          role: 'img',
        },
      }),
      h(
        'span',
        { class: 'session-main' },
        h('span', { class: 'session-name', text: sessionTitle(session, session.id) }, attentionBadge(session)),
        h('span', { class: 'session-meta', text: sessionMeta(session).join(' · ') }),
      ),
      sessionTimes(session),
    );
    if (session.status === 'exited') item.replaceChildren(button, this.dismissButton(session));
    else item.replaceChildren(button);
  }

  private dismissButton(session: Session): HTMLButtonElement {
    return h(
      'button',
      {
        class: 'icon-button session-dismiss',
        testid: 'dismiss-session',
        title: 'Remove from the list',
        attrs: { type: 'button', 'aria-label': `Remove ${sessionTitle(session, session.id)} from the list` },
        on: { click: () => this.dismiss(session.id) },
      },
      icon('close'),
    );
  }

  /** Hides an ended session from this browser's list. */
  private dismiss(id: string): void {
    this.dismissedIds.add(id);
    localStorage.setItem(DISMISSED_KEY, JSON.stringify([...this.dismissedIds]));
    this.host.dismissed(id);
    this.render();
  }

  /** Forgets dismissed sessions the broker no longer has. */
  private pruneDismissed(): void {
    let changed = false;
    for (const id of this.dismissedIds) {
      if (!this.feed.get(id)) {
        this.dismissedIds.delete(id);
        changed = true;
      }
    }
    if (changed) localStorage.setItem(DISMISSED_KEY, JSON.stringify([...this.dismissedIds]));
  }
}

/** Mode, the mode asked for when it fell back, and the exit or the viewer count. */
function sessionMeta(session: Session): string[] {
  const meta: string[] = [session.mode];
  if (session.requestedMode && session.requestedMode !== session.mode) meta.push(`asked for ${session.requestedMode}`);
  if (session.status === 'exited') {
    meta.push(session.exitSignal ? `ended by ${session.exitSignal}` : `exited ${session.exitCode ?? ''}`.trim());
  } else if (session.viewers) {
    meta.push(`${session.viewers} viewer${session.viewers === 1 ? '' : 's'}`);
  }
  return meta;
}

function sessionTimes(session: Session): HTMLElement {
  const now = Date.now();
  const created = h('span', { text: `created ${relativeTime(session.createdAt, now)}`, title: absoluteTime(session.createdAt) });
  const active = h('span', { text: `active ${relativeTime(session.lastActive, now)}`, title: absoluteTime(session.lastActive) });
  return h('span', { class: 'session-times' }, created, active);
}
