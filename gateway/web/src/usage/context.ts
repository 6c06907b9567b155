//! The live context gauge of a claude session's toolbar: how full the
//! context of the latest conversation in the session's folder is (its last
//! response's input plus cache tokens against the model's window), kept
//! current from the conversations feed as the transcript grows.

import { h } from '../app/dom';
import { listConversations, type Conversation } from '../conversations/api';

function compact(n: number): string {
  return Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

export class ContextGauge {
  readonly element: HTMLElement;
  private readonly meter: HTMLMeterElement;
  private readonly label: HTMLElement;
  private cwd: string | null = null;
  private feed: EventSource | null = null;
  private latest: Conversation | null = null;

  constructor() {
    this.meter = h('meter', { class: 'context-meter', attrs: { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0 } });
    this.label = h('span', { class: 'context-label' });
    this.element = h('span', { class: 'context-gauge', testid: 'session-context', attrs: { hidden: true } }, this.meter, this.label);
  }

  /** Follows the conversations of `cwd` (a claude session's folder); `null` stops. */
  watch(cwd: string | null): void {
    if (cwd === this.cwd) return;
    this.stop();
    this.cwd = cwd;
    if (cwd === null) return;
    this.feed = new EventSource('/api/conversations/events');
    this.feed.addEventListener('changed', (event) => {
      const data = JSON.parse((event as MessageEvent<string>).data) as { conversation?: Conversation };
      if (data.conversation) this.offer(data.conversation);
    });
    void listConversations({ project: cwd, limit: 1 })
      .then((page) => page.conversations.forEach((c) => this.offer(c)))
      .catch(() => {});
  }

  stop(): void {
    this.feed?.close();
    this.feed = null;
    this.cwd = null;
    this.latest = null;
    this.element.hidden = true;
  }

  /** Shows `c` if it is the folder's most recently active conversation. */
  private offer(c: Conversation): void {
    if (c.project !== this.cwd || !c.context?.window) return;
    if (this.latest && this.latest.id !== c.id && this.latest.lastActivity > c.lastActivity) return;
    this.latest = c;
    const { tokens, window, model } = c.context;
    const share = Math.min(1, tokens / window);
    this.meter.value = share;
    this.label.textContent = `${Math.round(share * 100)}% of ${compact(window)}`;
    this.element.title = `Context: ${tokens.toLocaleString()} of ${window.toLocaleString()} tokens (${model || 'unknown model'}), latest conversation in this folder`;
    this.element.dataset.tokens = String(tokens);
    this.element.dataset.window = String(window);
    this.element.hidden = false;
  }
}
