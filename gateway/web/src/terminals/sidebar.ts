//! The terminals view's sidebar (a drawer on phones): its head (title,
//! notifications switch, New), the new-session form and the session list.

import { notificationToggle } from '../app/attention';
import { h, icon } from '../app/dom';
import type { SessionFeed } from './feed';
import { NewSessionForm, type NewSessionFormHost } from './new-session-form';
import { SessionList, type SessionListHost } from './session-list';

export class Sidebar {
  readonly element: HTMLElement;
  readonly form: NewSessionForm;
  readonly list: SessionList;

  constructor(feed: SessionFeed, host: SessionListHost & NewSessionFormHost) {
    this.form = new NewSessionForm(host);
    this.list = new SessionList(feed, host);
    const newButton = h(
      'button',
      { class: 'button primary small', testid: 'new-session', attrs: { type: 'button' }, on: { click: () => this.form.toggle() } },
      icon('plus'),
      h('span', { text: 'New' }),
    );
    this.element = h(
      'aside',
      { class: 'sidebar', attrs: { 'aria-label': 'Sessions' } },
      // New first after the title: where the head is narrow, the switches go to a second line.
      h('div', { class: 'sidebar-head' }, h('h2', { text: 'Sessions' }), newButton, notificationToggle()),
      this.form.element,
      this.list.list,
      this.list.empty,
    );
  }
}
