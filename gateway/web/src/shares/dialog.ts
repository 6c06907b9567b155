//! The share dialog of the terminals view: makes a read-only link to the
//! active session (with an expiry), shows it once to copy, lists the
//! session's links (created, expires, viewers now) and revokes them, which
//! disconnects their viewers at once.

import { ApiError } from '../app/api';
import { h } from '../app/dom';
import { relativeTime } from '../app/format';
import { sharesApi, type ShareInfo } from './api';
import { untilTime } from './link';
import './shares.css';

/** How often an open dialog refreshes its list (viewers come and go). */
const REFRESH_MS = 3000;

/** The expiries offered, in seconds (the gateway caps them at SHARE_MAX_TTL_SECS). */
export const EXPIRIES: [string, number][] = [
  ['1 hour', 3600],
  ['8 hours', 8 * 3600],
  ['24 hours', 24 * 3600],
  ['7 days', 7 * 24 * 3600],
];

/** Opens the dialog for `sessionId` (named `name`). */
export function openShareDialog(sessionId: string, name: string): void {
  new ShareDialog(sessionId, name).open();
}

class ShareDialog {
  private readonly dialog: HTMLDialogElement;
  private readonly expiry: HTMLSelectElement;
  private readonly created: HTMLElement;
  private readonly list: HTMLElement;
  private readonly error: HTMLElement;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly sessionId: string,
    name: string,
  ) {
    this.expiry = h(
      'select',
      { class: 'input share-expiry-select', testid: 'share-expiry', attrs: { 'aria-label': 'Link expires after' } },
      ...EXPIRIES.map(([label, secs]) => h('option', { text: label, attrs: { value: secs } })),
    );
    const create = h('button', {
      class: 'button primary',
      testid: 'share-create',
      text: 'Create link',
      attrs: { type: 'button' },
      on: { click: () => void this.create() },
    });
    this.created = h('div', { class: 'share-created', testid: 'share-created' });
    this.created.hidden = true;
    this.error = h('p', { class: 'share-error', testid: 'share-error', attrs: { role: 'alert' } });
    this.list = h('ul', { class: 'share-list', testid: 'share-list' });
    const close = h('button', { class: 'button', testid: 'share-close', text: 'Close', attrs: { type: 'button' }, on: { click: () => this.dialog.close() } });
    const body = h(
      'div',
      { class: 'dialog-body share-dialog-body' },
      h('h2', { class: 'dialog-title', text: `Share ${name ? `“${name}”` : 'this session'} read-only` }),
      h('p', {
        class: 'dialog-message',
        text: 'Anyone with the link watches this terminal live, without the key. They cannot type, resize it or see anything else.',
      }),
      h('div', { class: 'share-create-row' }, h('label', { text: 'Expires after' }, this.expiry), create),
      this.created,
      this.error,
      h('h3', { class: 'share-list-title', text: 'Links' }),
      this.list,
      h('div', { class: 'dialog-actions' }, close),
    );
    this.dialog = h('dialog', { class: 'dialog share-dialog', testid: 'share-dialog' }, body);
    this.dialog.addEventListener('click', (event) => {
      if (event.target === this.dialog) this.dialog.close();
    });
    this.dialog.addEventListener('close', () => this.closed());
  }

  open(): void {
    document.body.appendChild(this.dialog);
    this.dialog.showModal();
    this.expiry.focus();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    void this.refresh();
  }

  private closed(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.dialog.remove();
  }

  private async create(): Promise<void> {
    this.error.textContent = '';
    try {
      const created = await sharesApi.create(this.sessionId, { expiresInSecs: Number(this.expiry.value) });
      this.showLink(`${location.origin}${created.path}`);
      await this.refresh();
    } catch (error) {
      this.error.textContent = describe(error);
    }
  }

  /** The new link, shown once: it cannot be listed again. */
  private showLink(url: string): void {
    const field = h('input', {
      class: 'input share-link',
      testid: 'share-link',
      attrs: { type: 'text', readonly: true, value: url, 'aria-label': 'Share link', spellcheck: 'false' },
    });
    const copy = h('button', {
      class: 'button',
      testid: 'share-copy',
      text: 'Copy',
      attrs: { type: 'button' },
      on: { click: () => void copyText(field, copy) },
    });
    this.created.replaceChildren(
      h('p', { class: 'share-hint', text: 'Copy the link now: it is shown only once.' }),
      h('div', { class: 'share-link-row' }, field, copy),
    );
    this.created.hidden = false;
    field.select();
  }

  private async refresh(): Promise<void> {
    try {
      this.render(await sharesApi.list(this.sessionId));
    } catch (error) {
      this.error.textContent = describe(error);
    }
  }

  private render(shares: ShareInfo[]): void {
    if (shares.length === 0) {
      this.list.replaceChildren(h('li', { class: 'share-empty', text: 'No link yet.' }));
      return;
    }
    const now = Date.now();
    this.list.replaceChildren(...shares.map((share) => this.row(share, now)));
  }

  private row(share: ShareInfo, now: number): HTMLLIElement {
    const revoke = h('button', {
      class: 'button small danger',
      testid: 'share-revoke',
      text: 'Revoke',
      attrs: { type: 'button' },
      on: { click: () => void this.revoke(share.id) },
    });
    const watching = share.viewers === 1 ? '1 watching' : `${share.viewers} watching`;
    return h(
      'li',
      { class: 'share-row', testid: 'share-row', attrs: { 'data-share': share.id, 'data-viewers': share.viewers } },
      h('span', { class: 'share-row-facts', text: `created ${relativeTime(share.createdAt, now)} · expires ${untilTime(share.expiresAt, now)}` }),
      h('span', { class: 'share-row-viewers', testid: 'share-viewers', text: watching }),
      revoke,
    );
  }

  private async revoke(shareId: string): Promise<void> {
    this.error.textContent = '';
    try {
      await sharesApi.revoke(this.sessionId, shareId);
    } catch (error) {
      this.error.textContent = describe(error);
    }
    await this.refresh();
  }
}

async function copyText(field: HTMLInputElement, button: HTMLButtonElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand('copy');
  }
  button.textContent = 'Copied';
  setTimeout(() => (button.textContent = 'Copy'), 2000);
}

function describe(error: unknown): string {
  if (error instanceof ApiError) return error.status === 0 ? 'The server cannot be reached.' : error.message;
  return String(error);
}
