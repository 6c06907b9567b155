//! The terminals open as tabs, in tab order, each a `TerminalPane`; the
//! list survives a reload of the page (sessionStorage), the gateway then
//! replaying each screen.

import type { TerminalPane } from './pane';

const OPEN_KEY = 'dispatch.openTerminals';

/** The sessions open before this page was loaded. */
export function storedOpenIds(): string[] {
  try {
    const value: unknown = JSON.parse(sessionStorage.getItem(OPEN_KEY) ?? '[]');
    return Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

export class OpenPanes {
  private readonly panes = new Map<string, TerminalPane>();
  private order: string[] = [];

  get ids(): readonly string[] {
    return this.order;
  }

  get size(): number {
    return this.order.length;
  }

  get(id: string | null): TerminalPane | null {
    return id === null ? null : (this.panes.get(id) ?? null);
  }

  has(id: string): boolean {
    return this.panes.has(id);
  }

  all(): IterableIterator<TerminalPane> {
    return this.panes.values();
  }

  /** Adds `pane` as the last tab. */
  add(pane: TerminalPane): void {
    this.panes.set(pane.sessionId, pane);
    this.order.push(pane.sessionId);
    this.save();
  }

  /** Disposes and removes the pane; returns the place its tab had (-1: none). */
  remove(id: string): number {
    const pane = this.panes.get(id);
    if (!pane) return -1;
    const index = this.order.indexOf(id);
    pane.dispose();
    this.panes.delete(id);
    this.order = this.order.filter((other) => other !== id);
    this.save();
    return index;
  }

  /** The id `step` tabs from `id`, wrapping around. */
  step(id: string, step: number): string {
    const index = this.order.indexOf(id);
    return this.order[(index + step + this.order.length) % this.order.length]!;
  }

  /** Disposes every pane and forgets them (also for the next load). */
  dispose(): void {
    for (const pane of this.panes.values()) pane.dispose();
    this.panes.clear();
    this.order = [];
    sessionStorage.removeItem(OPEN_KEY);
  }

  private save(): void {
    sessionStorage.setItem(OPEN_KEY, JSON.stringify(this.order));
  }
}
