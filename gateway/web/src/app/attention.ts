//! Sessions that need their user (`attention`, see docs/protocol.md): the
//! count in the page title, the badge's text, and a browser notification
//! when the page is hidden. Notifications are off until the user turns them
//! on (the browser asks for permission then, never at load); the choice is
//! kept in this browser. Web Push to this device (app/push.ts) has its own
//! toggle beside it.

import type { Session } from './api';
import { listenForOpenRequests, pushToggle } from './push';
import { attentionText } from './reasons';

export { attentionText };

const ENABLED_KEY = 'dispatch.notifications';
/** The `(N) ` the page title starts with while sessions need attention. */
const TITLE_COUNT = /^\(\d+\) /;

/** Running sessions that need attention. */
export function needingAttention(sessions: Iterable<Session>): Session[] {
  return [...sessions].filter((s) => s.attention && s.status === 'running');
}

/** `title` with the count of sessions needing attention in front (none when 0). */
export function titleWithCount(title: string, count: number): string {
  const bare = title.replace(TITLE_COUNT, '');
  return count > 0 ? `(${count}) ${bare}` : bare;
}

/** Whether the user turned notifications on (and the browser still allows them). */
export function notificationsEnabled(): boolean {
  return (
    typeof Notification !== 'undefined' &&
    Notification.permission === 'granted' &&
    localStorage.getItem(ENABLED_KEY) === 'on'
  );
}

/** Turns notifications on or off; asks the browser's permission when turning on. */
export async function setNotifications(on: boolean): Promise<boolean> {
  if (!on || typeof Notification === 'undefined') {
    localStorage.removeItem(ENABLED_KEY);
    return false;
  }
  const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
  if (permission !== 'granted') return false;
  localStorage.setItem(ENABLED_KEY, 'on');
  return true;
}

/**
 * Keeps the page title's count current and shows one notification per new
 * attention while the page is hidden; a click opens that session.
 */
export class AttentionWatch {
  private count = 0;
  /** The `at` of each session's attention already seen. */
  private readonly seen = new Map<string, number>();
  private readonly titleObserver: MutationObserver;

  constructor(private readonly open: (sessionId: string) => void) {
    // Views set the title as they like; the count is put back in front.
    this.titleObserver = new MutationObserver(() => this.applyTitle());
    this.titleObserver.observe(document.head, { subtree: true, childList: true, characterData: true });
    // A tapped push notification asks an open page to show its session.
    listenForOpenRequests(open);
  }

  /** Takes the current session list. */
  update(sessions: Iterable<Session>): void {
    const needing = needingAttention(sessions);
    this.count = needing.length;
    this.applyTitle();
    const current = new Set<string>();
    for (const session of needing) {
      current.add(session.id);
      const at = session.attention!.at;
      if (this.seen.get(session.id) === at) continue;
      this.seen.set(session.id, at);
      if (document.hidden && notificationsEnabled()) this.notify(session);
    }
    for (const id of this.seen.keys()) if (!current.has(id)) this.seen.delete(id);
  }

  private applyTitle(): void {
    const title = titleWithCount(document.title, this.count);
    if (title !== document.title) document.title = title;
  }

  private notify(session: Session): void {
    const name = session.name || 'A session';
    const notification = new Notification(`${name} ${attentionText(session.attention!.reason)}`, {
      tag: `dispatch-${session.id}`,
      body: 'Open dispatch to answer it.',
    });
    notification.onclick = () => {
      window.focus();
      this.open(session.id);
      notification.close();
    };
  }
}

/** The badge shown on a session's list item and tab while it needs attention. */
export function attentionBadge(session: Session | undefined): HTMLElement | null {
  const attention = session?.attention;
  if (!attention || session.status !== 'running') return null;
  const badge = document.createElement('span');
  badge.className = 'attention-badge';
  badge.dataset.testid = 'attention-badge';
  badge.dataset.reason = attention.reason;
  badge.textContent = '!';
  badge.title = `${attentionText(attention.reason)}: ${attention.title}`;
  badge.setAttribute('role', 'img');
  badge.setAttribute('aria-label', `Needs you: ${attentionText(attention.reason)}`);
  badge.style.cssText =
    'display:inline-grid;place-items:center;min-width:1.25em;height:1.25em;margin-inline-start:.35em;' +
    'border-radius:999px;background:#b3261e;color:#fff;font-weight:700;font-size:.75em;line-height:1;flex:none';
  return badge;
}

/** The buttons that turn browser notifications and Web Push on and off. */
export function notificationToggle(): HTMLElement {
  const group = document.createElement('span');
  group.className = 'notify-toggles';
  group.style.cssText = 'display:inline-flex;gap:.35em;align-items:center';
  group.append(pageNotificationToggle(), pushToggle());
  return group;
}

/** The button that turns browser notifications on and off. */
function pageNotificationToggle(): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button small';
  button.dataset.testid = 'notifications-toggle';
  const show = (on: boolean) => {
    button.textContent = on ? 'Notifying' : 'Notify me';
    button.setAttribute('aria-pressed', String(on));
    button.title = on
      ? 'Browser notifications are on for sessions that need you while this page is hidden'
      : 'Show a browser notification when a session needs you while this page is hidden';
  };
  show(notificationsEnabled());
  button.addEventListener('click', () => {
    void setNotifications(!notificationsEnabled()).then(show);
  });
  return button;
}
