//! The scrollback search bar of the terminals view: the query, the match
//! count, previous/next and close (Enter, Shift+Enter, Escape), driving the
//! active pane's search addon and its match decorations.

import { h } from '../app/dom';
import type { TerminalPane } from './pane';
import { toolbarButton } from './toolbar';

export class SearchBar {
  readonly element: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly count: HTMLElement;

  constructor(private readonly activePane: () => TerminalPane | null) {
    this.input = h('input', {
      class: 'input search-input',
      testid: 'search-input',
      attrs: { type: 'search', placeholder: 'Search the scrollback', 'aria-label': 'Search', autocomplete: 'off', spellcheck: 'false' },
    });
    this.count = h('span', { class: 'search-count', attrs: { 'aria-live': 'polite' } });
    this.element = h(
      'div',
      { class: 'search-bar' },
      this.input,
      this.count,
      toolbarButton('up', 'Previous match (Shift+Enter)', 'search-previous', () => this.find(false)),
      toolbarButton('down', 'Next match (Enter)', 'search-next', () => this.find(true)),
      toolbarButton('close', 'Close the search (Escape)', 'search-close', () => this.close()),
    );
    this.element.hidden = true;
    this.input.addEventListener('input', () => this.find(true, true));
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.find(!event.shiftKey);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        this.close();
      }
    });
  }

  /** Shows the match count of `pane`'s searches while it is the active one. */
  watch(pane: TerminalPane): void {
    pane.search.onDidChangeResults(({ resultIndex, resultCount }) => {
      if (pane !== this.activePane() || this.element.hidden || !this.input.value) return;
      this.count.textContent =
        resultCount === 0 ? 'No matches' : resultIndex >= 0 ? `${resultIndex + 1} of ${resultCount}` : `${resultCount}+ matches`;
    });
  }

  open(): void {
    if (!this.activePane()) return;
    this.element.hidden = false;
    this.input.focus();
    this.input.select();
  }

  close(focusTerminal = true): void {
    if (this.element.hidden) return;
    this.element.hidden = true;
    this.count.textContent = '';
    const pane = this.activePane();
    pane?.search.clearDecorations();
    if (focusTerminal) pane?.focus();
  }

  private find(forward: boolean, incremental = false): void {
    const pane = this.activePane();
    const term = this.input.value;
    if (!pane) return;
    if (!term) {
      pane.search.clearDecorations();
      this.count.textContent = '';
      return;
    }
    const styles = getComputedStyle(document.documentElement);
    const options = {
      incremental,
      decorations: {
        matchBackground: styles.getPropertyValue('--search-match').trim() || '#6b5b00',
        matchOverviewRuler: '#d4a72c',
        activeMatchBackground: styles.getPropertyValue('--search-active').trim() || '#d4a72c',
        activeMatchColorOverviewRuler: '#ff9632',
      },
    };
    const found = forward ? pane.search.findNext(term, options) : pane.search.findPrevious(term, options);
    if (!found) this.count.textContent = 'No matches';
  }
}
