//! The terminals view's toolbar: the drawer button (phones), the active
//! session's title and facts (mode, PTY size, viewers), a claude session's
//! links (its folder's conversations, the context gauge) and the action
//! buttons. Other features add their buttons with `addAction`; they go
//! before the session's own actions (rename, end).

import type { Session } from '../app/api';
import { h, icon } from '../app/dom';
import { conversationsForDirectory } from '../conversations/view';
import { ContextGauge } from '../usage/context';

/** A toolbar icon button; the mouse does not take the focus from the terminal. */
export function toolbarButton(
  name: Parameters<typeof icon>[0],
  label: string,
  testid: string,
  action: () => void,
  extra = '',
): HTMLButtonElement {
  return h(
    'button',
    {
      class: `icon-button ${extra}`.trim(),
      testid,
      title: label,
      attrs: { type: 'button', 'aria-label': label },
      on: { mousedown: (event: MouseEvent) => event.preventDefault(), click: action },
    },
    icon(name),
  );
}

/** What the toolbar shows of the active terminal. */
export interface ToolbarSubject {
  title: string;
  session: Session | null;
  /** The session ended: its own actions are disabled. */
  ended: boolean;
}

export class Toolbar {
  readonly element: HTMLElement;
  private readonly title = h('span', { class: 'toolbar-title' });
  private readonly meta = h('span', { class: 'toolbar-meta' });
  /** A claude session's link to its folder's conversations (kept on phones). */
  private readonly conversationsSlot = h('span', { class: 'toolbar-conversations' });
  private readonly contextGauge = new ContextGauge();
  private readonly actions = h('div', { class: 'toolbar-actions' });
  /** Added actions go before this one (the first of the session's own). */
  private readonly sessionActions: HTMLElement[] = [];

  constructor(toggleDrawer: () => void) {
    const drawerButton = h(
      'button',
      {
        class: 'icon-button drawer-toggle',
        testid: 'sessions-toggle',
        title: 'Sessions',
        attrs: { type: 'button', 'aria-label': 'Sessions' },
        on: { click: toggleDrawer },
      },
      icon('menu'),
    );
    this.element = h(
      'div',
      { class: 'toolbar' },
      drawerButton,
      h('div', { class: 'toolbar-info' }, this.title, this.meta),
      this.conversationsSlot,
      this.contextGauge.element,
      this.actions,
    );
  }

  /** Adds a button (see `toolbarButton`), shown while a terminal is open, before the session's own actions. */
  addAction(button: HTMLElement): void {
    this.actions.insertBefore(button, this.sessionActions[0] ?? null);
  }

  /** Adds one of the session's own actions (last; disabled once it ended). */
  addSessionAction(button: HTMLElement): void {
    this.sessionActions.push(button);
    this.actions.append(button);
  }

  /** Shows the active terminal, or the view's name when none is open. */
  render(subject: ToolbarSubject | null): void {
    this.actions.hidden = subject === null;
    if (!subject) {
      this.title.textContent = 'Terminals';
      this.meta.textContent = '';
      this.conversationsSlot.replaceChildren();
      this.contextGauge.watch(null);
      return;
    }
    const { session } = subject;
    this.title.textContent = subject.title;
    this.meta.textContent = sessionFacts(session).join(' · ');
    this.contextGauge.watch(session?.mode === 'claude' ? (session.cwd ?? null) : null);
    this.renderConversationsLink(session);
    for (const button of this.sessionActions) {
      if (button instanceof HTMLButtonElement) button.disabled = subject.ended;
    }
  }

  stop(): void {
    this.contextGauge.stop();
  }

  private renderConversationsLink(session: Session | null): void {
    const href = session?.mode === 'claude' && session.cwd ? conversationsForDirectory(session.cwd) : null;
    if (this.conversationsSlot.querySelector('a')?.getAttribute('href') !== href) {
      this.conversationsSlot.replaceChildren();
    }
    if (href && !this.conversationsSlot.firstChild) {
      const label = "Conversations in this session's folder";
      const link = h(
        'a',
        { class: 'toolbar-link', testid: 'session-conversations', title: label, attrs: { href, 'aria-label': label } },
        icon('conversations'),
        h('span', { class: 'toolbar-link-label', text: 'conversations' }),
      );
      this.conversationsSlot.append(link);
    }
  }
}

/** Mode, PTY size and viewer count. */
function sessionFacts(session: Session | null): string[] {
  if (!session) return [];
  const meta: string[] = [session.mode];
  if (session.cols && session.rows) meta.push(`${session.cols}×${session.rows}`);
  if (session.viewers && session.viewers > 1) meta.push(`${session.viewers} viewers`);
  return meta;
}
