//! Short messages at the bottom of the page (errors of actions, notices).

import { h } from './dom';

let region: HTMLElement | null = null;

function container(): HTMLElement {
  if (!region || !region.isConnected) {
    region = h('div', { class: 'toasts', attrs: { 'aria-live': 'polite' } });
    document.body.appendChild(region);
  }
  return region;
}

/** Shows `text` for a few seconds. */
export function toast(text: string, tone: 'info' | 'error' = 'info'): void {
  const item = h('div', { class: `toast ${tone}`, testid: 'toast', attrs: { role: tone === 'error' ? 'alert' : 'status' }, text });
  container().appendChild(item);
  setTimeout(() => item.classList.add('leaving'), tone === 'error' ? 6000 : 4000);
  setTimeout(() => item.remove(), tone === 'error' ? 6400 : 4400);
}
