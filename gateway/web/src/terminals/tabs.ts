//! The tab strip of open terminals: one tab per open session (state dot,
//! title, attention badge, close), selected by click, Enter or Space, moved
//! along with the arrow keys (a roving tabindex).

import type { Session } from '../app/api';
import { attentionBadge } from '../app/attention';
import { h, icon } from '../app/dom';

/** One open terminal, as its tab shows it. */
export interface TabInfo {
  id: string;
  title: string;
  /** The pane's connection state (`data-state`). */
  state: string;
  session: Session | undefined;
}

export interface TabsHost {
  /** Shows the session (a route change). */
  open(id: string): void;
  /** Closes the tab; the session keeps running. */
  close(id: string): void;
  /** The active tab was chosen again: back to its terminal. */
  focusActive(): void;
  /** Moves `step` tabs along, keeping the focus on the tabs. */
  step(step: number): void;
}

export class Tabs {
  readonly element: HTMLElement = h('div', { class: 'tabs', attrs: { role: 'tablist', 'aria-label': 'Open terminals' } });

  constructor(private readonly host: TabsHost) {}

  render(tabs: TabInfo[], activeId: string | null): void {
    this.element.replaceChildren(...tabs.map((tab) => this.tab(tab, tab.id === activeId)));
    this.element.hidden = tabs.length === 0;
  }

  /** Gives the focus to the selected tab (a way out of the terminal). */
  focusSelected(): void {
    this.element.querySelector<HTMLElement>('[aria-selected="true"]')?.focus();
  }

  focus(id: string): void {
    this.element.querySelector<HTMLElement>(`[data-session-id="${id}"]`)?.focus();
  }

  private tab(info: TabInfo, active: boolean): HTMLElement {
    const { id } = info;
    const close = h(
      'button',
      {
        class: 'tab-close',
        title: 'Close the tab (the session keeps running)',
        attrs: { type: 'button', 'aria-label': 'Close tab' },
        on: {
          click: (event: MouseEvent) => {
            event.stopPropagation();
            this.host.close(id);
          },
        },
      },
      icon('close'),
    );
    return h(
      'div',
      {
        class: 'tab',
        testid: 'terminal-tab',
        attrs: { role: 'tab', 'aria-selected': active ? 'true' : 'false', 'data-session-id': id, 'data-state': info.state, tabindex: active ? 0 : -1 },
        on: {
          click: () => this.host.open(id),
          keydown: (event: KeyboardEvent) => {
            if (event.key === 'Enter' || event.key === ' ') {
              event.preventDefault();
              if (active) this.host.focusActive();
              else this.host.open(id);
            } else if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
              event.preventDefault();
              this.host.step(event.key === 'ArrowRight' ? 1 : -1);
            }
          },
        },
      },
      h('span', { class: 'tab-dot', attrs: { 'aria-hidden': 'true' } }),
      h('span', { class: 'tab-title', text: info.title }),
      attentionBadge(info.session),
      close,
    );
  }
}
