//! The egress panel of the terminals view: the hosts the active session
//! reached through the gateway's egress proxy and those it was refused
//! (connections, bytes each way, last time, the refusal's reason), from
//! `GET /api/sessions/{id}/egress`, refreshed while the panel is open.

import { ApiError, request } from '../app/api';
import { h } from '../app/dom';
import { absoluteTime, relativeTime } from '../app/format';
import type { EgressHost, EgressReport } from '../generated/protocol';
import type { TerminalsExtensionHost } from './extension';
import { toolbarButton } from './toolbar';
import './egress.css';

/** How often an open panel asks again. */
const REFRESH_MS = 3000;

export type { EgressHost, EgressReport } from '../generated/protocol';

export const egressApi = {
  get: (id: string): Promise<EgressReport> => request<EgressReport>('GET', `/api/sessions/${encodeURIComponent(id)}/egress`),
};

/** 0 B, 512 B, 1.5 KiB, 12 MiB. */
export function byteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** Refused first, then the most recent. */
function byInterest(a: EgressHost, b: EgressHost): number {
  const refused = Number(b.decision === 'refused') - Number(a.decision === 'refused');
  return refused || b.lastAt - a.lastAt;
}

/** The panel; `element` goes into the workspace, hidden until opened. */
export class EgressPanel {
  readonly element: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly body: HTMLElement;
  private sessionId: string | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Answers to requests sent before the last change of session are dropped. */
  private generation = 0;

  constructor(private readonly closed: () => void) {
    this.summary = h('span', { class: 'egress-summary', attrs: { 'aria-live': 'polite' } });
    this.body = h('div', { class: 'egress-body' });
    const close = h('button', {
      class: 'button small',
      testid: 'egress-close',
      text: 'Close',
      attrs: { type: 'button' },
      on: { click: () => this.close() },
    });
    this.element = h(
      'section',
      { class: 'egress-panel', testid: 'egress-panel', attrs: { 'aria-label': 'Network access of this session' } },
      h('div', { class: 'egress-head' }, h('h3', { text: 'Network' }), this.summary, close),
      this.body,
    );
    this.element.hidden = true;
  }

  get open(): boolean {
    return !this.element.hidden;
  }

  /** Opens the panel on `sessionId`, or closes it when it is open. */
  toggle(sessionId: string | null): void {
    if (this.open || sessionId === null) {
      this.close();
      return;
    }
    this.element.hidden = false;
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.switchTo(sessionId);
  }

  /** The active session changed (`null`: none): an open panel follows it. */
  show(sessionId: string | null): void {
    if (sessionId === null) this.close();
    else if (this.open && sessionId !== this.sessionId) this.switchTo(sessionId);
  }

  private switchTo(sessionId: string): void {
    this.sessionId = sessionId;
    this.generation += 1;
    this.summary.textContent = 'Loading…';
    this.element.dataset.state = 'loading';
    this.body.replaceChildren();
    void this.refresh();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.element.hidden) return;
    this.element.hidden = true;
    this.closed();
  }

  dispose(): void {
    this.close();
  }

  private async refresh(): Promise<void> {
    const id = this.sessionId;
    if (!id || !this.open || document.visibilityState === 'hidden') return;
    const generation = this.generation;
    try {
      const report = await egressApi.get(id);
      if (generation === this.generation) this.render(report.hosts ?? []);
    } catch (error) {
      if (generation === this.generation) this.renderError(error);
    }
  }

  private render(hosts: EgressHost[]): void {
    const reached = hosts.filter((entry) => entry.decision !== 'refused').length;
    this.summary.textContent = `${reached} reached · ${hosts.length - reached} refused`;
    this.element.dataset.state = 'ready';
    if (hosts.length === 0) {
      this.body.replaceChildren(h('p', { class: 'egress-empty', text: 'No connection through the egress proxy yet.' }));
      return;
    }
    const now = Date.now();
    const head = h(
      'tr',
      {},
      ...['Host', 'Decision', 'Connections', 'Sent', 'Received', 'Last'].map((label) => h('th', { text: label, attrs: { scope: 'col' } })),
    );
    const rows = [...hosts].sort(byInterest).map((entry) => this.row(entry, now));
    this.body.replaceChildren(h('table', { class: 'egress-table' }, h('thead', {}, head), h('tbody', {}, ...rows)));
  }

  private row(entry: EgressHost, now: number): HTMLTableRowElement {
    const refused = entry.decision === 'refused';
    const decision = h('td', { class: 'egress-decision' }, h('span', { class: 'egress-badge', text: refused ? 'refused' : 'reached' }));
    if (refused && entry.reason) decision.append(h('span', { class: 'egress-reason', text: entry.reason }));
    return h(
      'tr',
      {
        testid: 'egress-row',
        attrs: { 'data-host': entry.host, 'data-port': entry.port, 'data-decision': refused ? 'refused' : 'allowed' },
      },
      h('td', { class: 'egress-host', text: entry.port === 443 ? entry.host : `${entry.host}:${entry.port}` }),
      decision,
      h('td', { class: 'egress-number', testid: 'egress-count', text: String(entry.count) }),
      h('td', { class: 'egress-number', text: byteSize(entry.bytesUp) }),
      h('td', { class: 'egress-number', text: byteSize(entry.bytesDown) }),
      h('td', { title: absoluteTime(entry.lastAt), text: relativeTime(entry.lastAt, now) }),
    );
  }

  private renderError(error: unknown): void {
    this.element.dataset.state = 'error';
    this.summary.textContent = '';
    const text =
      error instanceof ApiError
        ? error.status === 0
          ? 'The server cannot be reached.'
          : error.message
        : String(error);
    this.body.replaceChildren(h('p', { class: 'egress-empty', text: `Network access is not available: ${text}` }));
  }
}

/** The panel in the terminals view, opened by the toolbar's globe, following the active session. */
export function egressExtension(host: TerminalsExtensionHost): { dispose(): void } {
  const panel = new EgressPanel(() => host.active()?.pane.focus());
  host.toolbar.addAction(
    toolbarButton('globe', 'Network: hosts reached and refused', 'egress-toggle', () => panel.toggle(host.active()?.sessionId ?? null)),
  );
  host.addPanel(panel.element);
  const unsubscribe = host.onActiveChange((active) => panel.show(active?.sessionId ?? null));
  return {
    dispose: () => {
      unsubscribe();
      panel.dispose();
    },
  };
}
