//! The page around the views: the header (brand, navigation between views,
//! the connection status of the visible view, logout) and the outlet where
//! the router puts views.

import { h, icon } from './dom';
import { hashFor, type Route, type ViewDefinition } from './router';

/** What a view shows in the header's status pill. */
export interface HeaderStatus {
  state: string;
  label: string;
  tone: 'ok' | 'busy' | 'warn' | 'error' | 'idle';
}

export class Shell {
  readonly element: HTMLElement;
  readonly outlet: HTMLElement;
  private readonly nav: HTMLElement;
  private readonly status: HTMLElement;
  private readonly statusLabel: HTMLElement;

  constructor(onLogout: () => void) {
    this.nav = h('nav', { class: 'nav', attrs: { 'aria-label': 'Views' } });
    this.statusLabel = h('span', { class: 'status-label' });
    this.status = h(
      'div',
      { class: 'status', testid: 'connection-status', attrs: { role: 'status', 'aria-live': 'polite' } },
      h('span', { class: 'status-dot', attrs: { 'aria-hidden': 'true' } }),
      this.statusLabel,
    );
    const logout = h(
      'button',
      { class: 'icon-button', testid: 'logout', title: 'Log out', attrs: { type: 'button', 'aria-label': 'Log out' }, on: { click: onLogout } },
      icon('logout'),
    );
    const brand = h('a', { class: 'brand', attrs: { href: '#/' } }, icon('terminal'), h('span', { text: 'dispatch' }));
    const header = h('header', { class: 'app-header' }, brand, this.nav, h('div', { class: 'spacer' }), this.status, logout);
    this.outlet = h('main', { class: 'outlet' });
    this.element = h('div', { class: 'app' }, header, this.outlet);
    this.setStatus(null);
  }

  /** Lists the views in the navigation (hidden when there is only one). */
  setViews(views: ViewDefinition[]): void {
    this.nav.replaceChildren(
      ...views.map((view) =>
        h(
          'a',
          { class: 'nav-link', title: view.title, attrs: { href: hashFor(view.name), 'data-view': view.name } },
          view.icon ? icon(view.icon) : null,
          h('span', { class: 'nav-label', text: view.title }),
        ),
      ),
    );
    this.nav.hidden = views.length < 2;
  }

  /** Highlights the current view. */
  setRoute(route: Route): void {
    for (const link of this.nav.querySelectorAll<HTMLAnchorElement>('a[data-view]')) {
      if (link.dataset.view === route.view) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  /** Shows a view's connection state; null hides the pill. */
  setStatus(status: HeaderStatus | null): void {
    this.status.hidden = status === null;
    this.status.dataset.state = status?.state ?? 'none';
    this.status.dataset.tone = status?.tone ?? 'idle';
    this.statusLabel.textContent = status?.label ?? '';
    this.status.title = status?.label ?? '';
  }
}
