//! The terminals view (`#/terminals/<id>`): the live session list with the
//! new-session form, tabs of open terminals, the active terminal with its
//! toolbar and search, and the phone key bar. Open tabs survive a reload
//! (sessionStorage) and reattach, the gateway replaying their screens.

import { sessionsApi, type Session, type SessionMode, ApiError } from '../app/api';
import { AttentionWatch, attentionBadge, notificationToggle } from '../app/attention';
import { auth } from '../app/auth';
import { guardShortcutClose } from '../app/close-guard';
import { confirmDialog, promptDialog } from '../app/dialog';
import { h, icon } from '../app/dom';
import { absoluteTime, relativeTime } from '../app/format';
import { navigate, type Route, type View, type ViewDefinition } from '../app/router';
import type { Shell } from '../app/shell';
import { exposeTestHooks } from '../app/test-hooks';
import { currentScheme, onSchemeChange } from '../app/theme';
import { toast } from '../app/toast';
import type { LinkState } from '../app/reconnect';
import { EgressPanel } from './egress';
import { SessionFeed } from './feed';
import { Keybar, type ScrollTo } from './keybar';
import { StickyModifiers } from './modifiers';
import { SHORTCUTS_HELP, TerminalPane, type PaneHost, type Shortcut } from './pane';
import { describeFeed, describeState } from './status';
import { conversationsForDirectory } from '../conversations/view';
import { ContextGauge } from '../usage/context';
import { MAX_SESSION_NAME_CHARS } from '../generated/limits';

const VIEW = 'terminals';
const OPEN_KEY = 'dispatch.openTerminals';
const FONT_KEY = 'dispatch.fontSize';
/** Ended sessions dismissed from this browser's list (until the broker drops them). */
const DISMISSED_KEY = 'dispatch.dismissedSessions';
const MIN_FONT = 9;
const MAX_FONT = 28;

/** A session's display name. */
export function sessionTitle(session: Session | null | undefined, id: string): string {
  const name = session?.name?.trim();
  return name ? name : `session ${id.slice(0, 8)}`;
}

function storedFontSize(): number {
  const stored = Number(localStorage.getItem(FONT_KEY));
  if (Number.isInteger(stored) && stored >= MIN_FONT && stored <= MAX_FONT) return stored;
  return matchMedia('(max-width: 760px)').matches ? 13 : 14;
}

function storedDismissed(): Set<string> {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(DISMISSED_KEY) ?? '[]');
    return new Set(Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : []);
  } catch {
    return new Set();
  }
}

function storedOpenIds(): string[] {
  try {
    const value: unknown = JSON.parse(sessionStorage.getItem(OPEN_KEY) ?? '[]');
    return Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.status === 0 ? 'The server cannot be reached.' : error.message;
  return String(error);
}

class TerminalsView implements View, PaneHost {
  readonly element: HTMLElement;
  private readonly feed: SessionFeed;
  private readonly panes = new Map<string, TerminalPane>();
  private order: string[] = [];
  private activeId: string | null = null;
  /** Told of every pane change (a test hook records the announced sizes). */
  private paneChangedHook: ((pane: TerminalPane) => void) | null = null;
  private readonly modifiers = new StickyModifiers();
  private readonly dismissed = storedDismissed();
  /** The tab to give the focus to once it is open (moving along the tabs by keyboard). */
  private focusTabOnOpen: string | null = null;
  private fontSize = storedFontSize();
  private visible = false;
  private started = false;
  private ticks = 0;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private readonly unsubscribeScheme: () => void;
  private readonly unguardClose: () => void;

  // Sidebar
  private readonly sidebar: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly listItems = new Map<string, HTMLLIElement>();
  private readonly listEmpty: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly modeSelect: HTMLSelectElement;
  private readonly nameInput: HTMLInputElement;
  private readonly createButton: HTMLButtonElement;
  private readonly formError: HTMLElement;
  // Workspace
  private readonly tabs: HTMLElement;
  private readonly toolbarTitle: HTMLElement;
  private readonly toolbarMeta: HTMLElement;
  /** A claude session's link to its folder's conversations (kept on phones). */
  private readonly conversationsSlot: HTMLElement;
  private readonly contextGauge = new ContextGauge();
  private readonly actions: HTMLElement;
  private readonly searchBar: HTMLElement;
  private readonly searchInput: HTMLInputElement;
  private readonly searchCount: HTMLElement;
  private readonly area: HTMLElement;
  private readonly emptyState: HTMLElement;
  private readonly keybar: Keybar;
  /** The active session's network access (hosts reached and refused). */
  private readonly egress = new EgressPanel(() => this.activePane()?.focus());

  /** The title's count and notifications of sessions that need their user. */
  private readonly attention = new AttentionWatch((id) => navigate(VIEW, [id]));

  constructor(private readonly shell: Shell) {
    this.feed = new SessionFeed({
      onChange: () => {
        this.renderList();
        this.attention.update(this.feed.list);
      },
      onState: (state) => this.feedState(state),
    });

    // New-session form.
    this.modeSelect = h(
      'select',
      { class: 'input', testid: 'session-mode', attrs: { id: 'session-mode', name: 'mode' } },
      h('option', { text: 'Shell', attrs: { value: 'shell' } }),
      h('option', { text: 'Claude Code', attrs: { value: 'claude' } }),
    );
    this.nameInput = h('input', {
      class: 'input',
      testid: 'session-name',
      attrs: { id: 'session-name', name: 'name', type: 'text', maxlength: MAX_SESSION_NAME_CHARS, placeholder: 'Optional', autocomplete: 'off', spellcheck: 'false' },
    });
    this.createButton = h('button', { class: 'button primary', testid: 'create-session', text: 'Create', attrs: { type: 'submit' } });
    this.formError = h('p', { class: 'form-error', attrs: { role: 'alert' } });
    this.formError.hidden = true;
    this.form = h(
      'form',
      { class: 'new-session-form' },
      h('label', { class: 'field-label', text: 'Mode', attrs: { for: 'session-mode' } }),
      this.modeSelect,
      h('label', { class: 'field-label', text: 'Name', attrs: { for: 'session-name' } }),
      this.nameInput,
      this.formError,
      h(
        'div',
        { class: 'form-actions' },
        h('button', { class: 'button', text: 'Cancel', attrs: { type: 'button' }, on: { click: () => this.toggleForm(false) } }),
        this.createButton,
      ),
    );
    this.form.hidden = true;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.createSession();
    });

    const newButton = h(
      'button',
      { class: 'button primary small', testid: 'new-session', attrs: { type: 'button' }, on: { click: () => this.toggleForm() } },
      icon('plus'),
      h('span', { text: 'New' }),
    );
    this.list = h('ul', { class: 'session-list', attrs: { 'aria-label': 'Sessions' } });
    this.listEmpty = h('p', { class: 'list-empty', text: 'Loading sessions…' });
    this.sidebar = h(
      'aside',
      { class: 'sidebar', attrs: { 'aria-label': 'Sessions' } },
      h('div', { class: 'sidebar-head' }, h('h2', { text: 'Sessions' }), notificationToggle(), newButton),
      this.form,
      this.list,
      this.listEmpty,
    );

    // Workspace: tabs, toolbar, search, terminal area, key bar.
    this.tabs = h('div', { class: 'tabs', attrs: { role: 'tablist', 'aria-label': 'Open terminals' } });
    const drawerButton = h(
      'button',
      {
        class: 'icon-button drawer-toggle',
        testid: 'sessions-toggle',
        title: 'Sessions',
        attrs: { type: 'button', 'aria-label': 'Sessions' },
        on: { click: () => this.toggleDrawer() },
      },
      icon('menu'),
    );
    this.toolbarTitle = h('span', { class: 'toolbar-title' });
    this.toolbarMeta = h('span', { class: 'toolbar-meta' });
    this.conversationsSlot = h('span', { class: 'toolbar-conversations' });
    this.actions = h(
      'div',
      { class: 'toolbar-actions' },
      this.iconButton('search', 'Search the scrollback (Ctrl+Shift+F)', 'search-toggle', () => this.openSearch()),
      this.iconButton('textSmaller', 'Smaller text', 'font-smaller', () => this.changeFont(-1)),
      this.iconButton('textLarger', 'Larger text', 'font-larger', () => this.changeFont(1)),
      this.iconButton(
        'fullscreen',
        'Full screen (the terminal also gets Ctrl+W, Ctrl+T and other browser keys)',
        'fullscreen',
        () => void this.toggleFullscreen(),
      ),
      this.iconButton('globe', 'Network: hosts reached and refused', 'egress-toggle', () => this.egress.toggle(this.activeId)),
      this.iconButton('edit', 'Rename the session', 'rename-session', () => void this.renameActive()),
      this.iconButton('power', 'End the session', 'end-session', () => void this.endActive(), 'danger'),
    );
    const toolbar = h(
      'div',
      { class: 'toolbar' },
      drawerButton,
      h('div', { class: 'toolbar-info' }, this.toolbarTitle, this.toolbarMeta),
      this.conversationsSlot,
      this.contextGauge.element,
      this.actions,
    );

    this.searchInput = h('input', {
      class: 'input search-input',
      testid: 'search-input',
      attrs: { type: 'search', placeholder: 'Search the scrollback', 'aria-label': 'Search', autocomplete: 'off', spellcheck: 'false' },
    });
    this.searchCount = h('span', { class: 'search-count', attrs: { 'aria-live': 'polite' } });
    this.searchBar = h(
      'div',
      { class: 'search-bar' },
      this.searchInput,
      this.searchCount,
      this.iconButton('up', 'Previous match (Shift+Enter)', 'search-previous', () => this.find(false)),
      this.iconButton('down', 'Next match (Enter)', 'search-next', () => this.find(true)),
      this.iconButton('close', 'Close the search (Escape)', 'search-close', () => this.closeSearch()),
    );
    this.searchBar.hidden = true;
    this.searchInput.addEventListener('input', () => this.find(true, true));
    this.searchInput.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.find(!event.shiftKey);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        this.closeSearch();
      }
    });

    this.area = h('div', { class: 'terminal-area', testid: 'terminal', attrs: { 'aria-description': SHORTCUTS_HELP } });
    this.emptyState = h(
      'div',
      { class: 'empty-state' },
      icon('terminal'),
      h('h2', { text: 'No terminal open' }),
      h('p', { text: 'Create a session, or open one from the list.' }),
      h(
        'button',
        { class: 'button primary', testid: 'empty-new-session', attrs: { type: 'button' }, on: { click: () => this.toggleForm(true) } },
        icon('plus'),
        h('span', { text: 'New session' }),
      ),
    );
    this.keybar = new Keybar(this.modifiers, () => {
      const pane = this.activePane();
      if (!pane) return null;
      return {
        sendKeys: (data: string) => pane.sendKeys(data),
        applicationCursor: () => pane.term.modes.applicationCursorKeysMode,
        focus: () => pane.focus(),
        alternateScreen: () => pane.term.buffer.active.type === 'alternate',
        scroll: (to: ScrollTo) => pane.scroll(to),
        copy: () => this.copySelection(pane),
        paste: () => void this.pasteClipboard(pane),
      };
    });

    const workspace = h(
      'section',
      { class: 'workspace', attrs: { 'aria-label': 'Terminal' } },
      h('div', { class: 'workspace-head' }, this.tabs, toolbar),
      this.searchBar,
      this.egress.element,
      this.area,
      this.emptyState,
      this.keybar.element,
    );
    const scrim = h('div', { class: 'scrim', on: { click: () => this.toggleDrawer(false) } });
    this.element = h('div', { class: 'terminals-view' }, this.sidebar, scrim, workspace);

    this.unsubscribeScheme = onSchemeChange((scheme) => {
      for (const pane of this.panes.values()) pane.setScheme(scheme);
    });
    window.addEventListener('online', this.online);
    document.addEventListener('visibilitychange', this.online);
    this.unguardClose = guardShortcutClose(() =>
      [...this.panes.values()].some((pane) => pane.state.kind === 'attached' || pane.state.kind === 'waiting'),
    );

    type Size = { cols: number; rows: number };
    let record: { resizes: Size[]; announced: Size[] } = { resizes: [], announced: [] };
    let recording: { dispose(): void } | null = null;
    exposeTestHooks({
      activeSessionId: () => this.activeId,
      openSessionIds: () => [...this.order],
      bufferText: () => this.activePane()?.bufferText() ?? '',
      screenText: () => this.activePane()?.screenText() ?? '',
      terminalSize: () => {
        const pane = this.activePane();
        return pane ? { cols: pane.term.cols, rows: pane.term.rows } : null;
      },
      fittedSize: () => this.activePane()?.fittedSize() ?? null,
      announcedSize: () => this.activePane()?.ptySize ?? null,
      drawnFontSize: () => this.activePane()?.drawnFontSize ?? null,
      // From now on, the active terminal's size changes and the PTY sizes
      // announced to it (starting with the last one announced before).
      recordTerminalSizes: () => {
        const pane = this.activePane();
        const session = pane?.session;
        const current: typeof record = { resizes: [], announced: session ? [{ cols: session.cols, rows: session.rows }] : [] };
        record = current;
        recording?.dispose();
        recording = pane?.term.onResize(({ cols, rows }) => current.resizes.push({ cols, rows })) ?? null;
        this.paneChangedHook = (changed) => {
          const session = changed.session;
          const last = current.announced[current.announced.length - 1];
          if (changed !== pane || !session || (last && last.cols === session.cols && last.rows === session.rows)) return;
          current.announced.push({ cols: session.cols, rows: session.rows });
        };
      },
      recordedTerminalSizes: () => record,
      terminalState: () => this.activePane()?.state.kind ?? null,
      viewport: () => {
        const term = this.activePane()?.term;
        if (!term) return null;
        const buffer = term.buffer.active;
        return {
          length: buffer.length,
          baseY: buffer.baseY,
          viewportY: buffer.viewportY,
          cursorX: buffer.cursorX,
          cursorY: buffer.cursorY,
          rows: term.rows,
        };
      },
      ackStats: () => this.activePane()?.ackStats ?? null,
      selectionText: () => this.activePane()?.term.getSelection() ?? '',
      renderer: () => this.activePane()?.element.dataset.renderer ?? null,
    });

    this.renderWorkspace();
  }

  // View lifecycle ---------------------------------------------------------

  show(route: Route): void {
    this.visible = true;
    if (!this.started) {
      // First visit: connect the list and bring back the tabs open before a reload.
      this.started = true;
      this.feed.start();
      for (const id of storedOpenIds()) this.openPane(id);
    }
    const wanted = route.params[0];
    if (wanted) {
      this.openPane(wanted);
      this.activate(wanted);
    } else if (this.order.length) {
      const id = this.activeId && this.panes.has(this.activeId) ? this.activeId : this.order[this.order.length - 1];
      navigate(VIEW, [id], true);
      return;
    } else {
      this.activate(null);
    }
    if (!this.ticker) this.ticker = setInterval(() => this.tick(), 1000);
    this.renderStatus();
  }

  hide(): void {
    this.visible = false;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  dispose(): void {
    this.hide();
    for (const pane of this.panes.values()) pane.dispose();
    this.panes.clear();
    this.order = [];
    this.contextGauge.stop();
    sessionStorage.removeItem(OPEN_KEY);
    this.feed.dispose();
    this.egress.dispose();
    this.unsubscribeScheme();
    this.unguardClose();
    window.removeEventListener('online', this.online);
    document.removeEventListener('visibilitychange', this.online);
  }

  /** The network or the page came back: retry what waits, check what looks open. */
  private readonly online = (): void => {
    if (document.visibilityState === 'hidden') return;
    this.feed.retry();
    for (const pane of this.panes.values()) {
      if (pane.state.kind === 'waiting') pane.retry();
      else pane.checkAlive();
    }
  };

  // PaneHost ---------------------------------------------------------------

  transformInput(data: string): string {
    return this.modifiers.apply(data);
  }

  changed(pane: TerminalPane): void {
    this.paneChangedHook?.(pane);
    const state = pane.state;
    if (state.kind === 'stopped' && state.reason === 'unauthorized') {
      auth.lost();
      return;
    }
    // Only sessions the list knows: a pane must not bring back one the broker lost.
    if (pane.session && this.feed.get(pane.sessionId)) this.feedSession(pane.session);
    this.renderTabs();
    if (pane.sessionId === this.activeId) {
      this.renderToolbar();
      this.renderStatus();
    }
  }

  notify(_pane: TerminalPane, text: string, tone: 'info' | 'error'): void {
    toast(text, tone);
  }

  shortcut(pane: TerminalPane, action: Shortcut): void {
    if (action === 'search') {
      this.openSearch();
      return;
    }
    if (action === 'leave') {
      this.tabs.querySelector<HTMLElement>('[aria-selected="true"]')?.focus();
      return;
    }
    if (action === 'previous-tab' || action === 'next-tab') {
      this.switchTab(action === 'next-tab' ? 1 : -1);
      return;
    }
    const selection = pane.term.getSelection();
    if (selection) void navigator.clipboard?.writeText(selection).then(() => toast('Copied'), () => toast('Copy failed', 'error'));
  }

  /** The key bar's Copy: the selection to the clipboard. */
  private copySelection(pane: TerminalPane): void {
    const selection = pane.term.getSelection();
    if (!selection) {
      toast('Nothing selected: long-press the text to select it.');
      return;
    }
    if (!navigator.clipboard) {
      toast('Copy failed: this page has no clipboard access.', 'error');
      return;
    }
    void navigator.clipboard.writeText(selection).then(
      () => toast('Copied'),
      () => toast('Copy failed', 'error'),
    );
  }

  /** The key bar's Paste: the clipboard as typed, or, where the browser will not tell it, a box to paste into. */
  private async pasteClipboard(pane: TerminalPane): Promise<void> {
    let text: string | null = null;
    try {
      text = (await navigator.clipboard?.readText()) ?? null;
    } catch {
      text = null;
    }
    if (text === null) {
      text = await promptDialog({ title: 'Paste', label: 'Paste the text here', value: '', confirmLabel: 'Paste', maxLength: 100_000 });
    }
    if (text) pane.paste(text);
    pane.focus();
  }

  closeRequested(pane: TerminalPane): void {
    this.closePane(pane.sessionId);
  }

  // Panes and tabs ---------------------------------------------------------

  /** Opens the tab `step` places from the active one (wrapping around). */
  private switchTab(step: number, focusTab = false): void {
    if (this.order.length < 2 || !this.activeId) return;
    const index = this.order.indexOf(this.activeId);
    const next = this.order[(index + step + this.order.length) % this.order.length]!;
    this.focusTabOnOpen = focusTab ? next : null;
    navigate(VIEW, [next]);
  }

  private activePane(): TerminalPane | null {
    return this.activeId ? (this.panes.get(this.activeId) ?? null) : null;
  }

  private openPane(id: string): TerminalPane {
    let pane = this.panes.get(id);
    if (pane) return pane;
    pane = new TerminalPane(id, this.feed.get(id), { fontSize: this.fontSize, scheme: currentScheme() }, this);
    const searched = pane;
    searched.search.onDidChangeResults(({ resultIndex, resultCount }) => {
      if (searched !== this.activePane() || this.searchBar.hidden || !this.searchInput.value) return;
      this.searchCount.textContent =
        resultCount === 0 ? 'No matches' : resultIndex >= 0 ? `${resultIndex + 1} of ${resultCount}` : `${resultCount}+ matches`;
    });
    this.panes.set(id, pane);
    this.order.push(id);
    pane.hide();
    this.saveOpen();
    return pane;
  }

  private activate(id: string | null): void {
    if (id !== null && !this.panes.has(id)) id = null;
    const previous = this.activePane();
    this.activeId = id;
    const pane = this.activePane();
    if (previous && previous !== pane) previous.hide();
    this.closeSearch(false);
    this.egress.show(id);
    // Lay out the area before the pane measures it.
    this.emptyState.hidden = pane !== null;
    this.element.dataset.hasTerminal = String(pane !== null);
    const focusTab = id !== null && this.focusTabOnOpen === id;
    this.focusTabOnOpen = null;
    if (pane) {
      pane.show();
      pane.open(this.area);
      if (!focusTab) pane.focus();
      this.toggleDrawer(false);
    } else if (this.order.length === 0) {
      this.toggleDrawer(true);
    }
    this.renderWorkspace();
    if (focusTab) this.tabs.querySelector<HTMLElement>(`[data-session-id="${id}"]`)?.focus();
  }

  private closePane(id: string): void {
    const pane = this.panes.get(id);
    if (!pane) return;
    const index = this.order.indexOf(id);
    pane.dispose();
    this.panes.delete(id);
    this.order = this.order.filter((other) => other !== id);
    this.saveOpen();
    if (this.activeId === id) {
      const next = this.order[Math.min(index, this.order.length - 1)];
      this.activeId = null;
      if (next) navigate(VIEW, [next], true);
      else {
        navigate(VIEW, [], true);
        this.activate(null);
      }
    } else {
      this.renderWorkspace();
    }
  }

  private saveOpen(): void {
    sessionStorage.setItem(OPEN_KEY, JSON.stringify(this.order));
  }

  // Actions ----------------------------------------------------------------

  private toggleForm(open = this.form.hidden): void {
    this.form.hidden = !open;
    this.formError.hidden = true;
    if (open) {
      this.toggleDrawer(true);
      this.nameInput.focus();
    } else if (this.activePane()) {
      // On a phone the form opened the drawer over the terminal: give it back.
      this.toggleDrawer(false);
      this.activePane()?.focus();
    }
  }

  private async createSession(): Promise<void> {
    const mode = this.modeSelect.value as SessionMode;
    const name = this.nameInput.value.trim();
    this.createButton.disabled = true;
    this.formError.hidden = true;
    try {
      // A new session takes the size of this screen.
      const size = this.activePane()?.fittedSize();
      const session = await sessionsApi.create({
        mode,
        ...(name ? { name } : {}),
        ...(size ? { cols: size.cols, rows: size.rows } : {}),
      });
      if (session.fallbackReason) toast(`Claude Code is not available: ${session.fallbackReason}. A shell runs instead.`);
      this.feed.upsert(session);
      this.nameInput.value = '';
      this.toggleForm(false);
      this.openPane(session.id);
      navigate(VIEW, [session.id]);
    } catch (error) {
      this.formError.textContent = `Could not create the session: ${errorText(error)}`;
      this.formError.hidden = false;
    } finally {
      this.createButton.disabled = false;
    }
  }

  private async renameActive(): Promise<void> {
    const pane = this.activePane();
    if (!pane) return;
    const current = pane.session?.name ?? '';
    const name = await promptDialog({ title: 'Rename session', label: 'Name', value: current, confirmLabel: 'Rename', maxLength: MAX_SESSION_NAME_CHARS });
    pane.focus();
    if (name === null || name === current) return;
    try {
      const session = await sessionsApi.rename(pane.sessionId, name);
      pane.session = session;
      this.feedSession(session);
      this.renderWorkspace();
    } catch (error) {
      toast(`Could not rename: ${errorText(error)}`, 'error');
    }
  }

  private async endActive(): Promise<void> {
    const pane = this.activePane();
    if (!pane) return;
    const title = sessionTitle(pane.session ?? this.feed.get(pane.sessionId), pane.sessionId);
    const confirmed = await confirmDialog({
      title: `End “${title}”?`,
      message: 'Its process and everything it started will be stopped. This cannot be undone.',
      confirmLabel: 'End session',
      danger: true,
    });
    if (!confirmed) {
      pane.focus();
      return;
    }
    try {
      const session = await sessionsApi.end(pane.sessionId);
      this.feedSession(session);
      this.closePane(pane.sessionId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.closePane(pane.sessionId);
      else toast(`Could not end the session: ${errorText(error)}`, 'error');
    }
  }

  private changeFont(delta: number): void {
    this.fontSize = Math.min(MAX_FONT, Math.max(MIN_FONT, this.fontSize + delta));
    localStorage.setItem(FONT_KEY, String(this.fontSize));
    for (const pane of this.panes.values()) pane.setFontSize(this.fontSize);
  }

  /**
   * Full screen with the Keyboard Lock API, where the browser has it: keys the
   * browser keeps for itself otherwise (Ctrl+W, Ctrl+T, Ctrl+N) reach the terminal.
   */
  private async toggleFullscreen(): Promise<void> {
    const keyboard = (navigator as Navigator & { keyboard?: { lock?(): Promise<void>; unlock?(): void } }).keyboard;
    try {
      if (document.fullscreenElement) {
        keyboard?.unlock?.();
        await document.exitFullscreen();
      } else {
        await document.documentElement.requestFullscreen();
        await keyboard?.lock?.();
      }
    } catch {
      // Not allowed here (an iframe, a phone): nothing to undo.
    }
    this.activePane()?.focus();
  }

  private toggleDrawer(open?: boolean): void {
    const next = open ?? this.element.dataset.drawer !== 'open';
    this.element.dataset.drawer = next ? 'open' : 'closed';
  }

  // Search -----------------------------------------------------------------

  private openSearch(): void {
    if (!this.activePane()) return;
    this.searchBar.hidden = false;
    this.searchInput.focus();
    this.searchInput.select();
  }

  private closeSearch(focusTerminal = true): void {
    if (this.searchBar.hidden) return;
    this.searchBar.hidden = true;
    this.searchCount.textContent = '';
    const pane = this.activePane();
    pane?.search.clearDecorations();
    if (focusTerminal) pane?.focus();
  }

  private find(forward: boolean, incremental = false): void {
    const pane = this.activePane();
    const term = this.searchInput.value;
    if (!pane) return;
    if (!term) {
      pane.search.clearDecorations();
      this.searchCount.textContent = '';
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
    if (!found) this.searchCount.textContent = 'No matches';
  }

  // Rendering --------------------------------------------------------------

  private feedSession(session: Session): void {
    const known = this.feed.get(session.id);
    if (!known || known.lastActive <= session.lastActive || known.status !== session.status) this.feed.upsert(session);
  }

  private feedState(state: LinkState): void {
    if (state.kind === 'stopped' && state.reason === 'unauthorized') {
      auth.lost();
      return;
    }
    if (!this.activePane()) this.renderStatus();
    this.renderList();
  }

  /** Every second: the retry countdown; every 30 s: the list's relative times. */
  private tick(): void {
    this.renderStatus();
    this.ticks = (this.ticks + 1) % 30;
    if (this.ticks === 0) this.renderList();
  }

  private renderStatus(): void {
    if (!this.visible) return;
    const pane = this.activePane();
    const now = Date.now();
    this.shell.setStatus(pane ? describeState(pane.state, now, pane.reconnecting) : describeFeed(this.feed.state, now));
  }

  private renderWorkspace(): void {
    this.renderTabs();
    this.renderToolbar();
    this.renderList();
    this.renderStatus();
    const hasPane = this.activePane() !== null;
    this.element.dataset.hasTerminal = String(hasPane);
    this.emptyState.hidden = hasPane;
  }

  private renderTabs(): void {
    const tabs = this.order.map((id) => {
      const pane = this.panes.get(id);
      const active = id === this.activeId;
      const state = pane?.state.kind ?? 'connecting';
      const close = h(
        'button',
        {
          class: 'tab-close',
          title: 'Close the tab (the session keeps running)',
          attrs: { type: 'button', 'aria-label': 'Close tab' },
          on: {
            click: (event: MouseEvent) => {
              event.stopPropagation();
              this.closePane(id);
            },
          },
        },
        icon('close'),
      );
      const tab = h(
        'div',
        {
          class: 'tab',
          testid: 'terminal-tab',
          attrs: { role: 'tab', 'aria-selected': active ? 'true' : 'false', 'data-session-id': id, 'data-state': state, tabindex: active ? 0 : -1 },
          on: {
            click: () => navigate(VIEW, [id]),
            keydown: (event: KeyboardEvent) => {
              if (event.key === 'Enter' || event.key === ' ') {
                event.preventDefault();
                if (id === this.activeId) this.activePane()?.focus();
                else navigate(VIEW, [id]);
              } else if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
                event.preventDefault();
                this.switchTab(event.key === 'ArrowRight' ? 1 : -1, true);
              }
            },
          },
        },
        h('span', { class: 'tab-dot', attrs: { 'aria-hidden': 'true' } }),
        h('span', { class: 'tab-title', text: sessionTitle(pane?.session ?? this.feed.get(id), id) }),
        attentionBadge(this.feed.get(id)),
        close,
      );
      return tab;
    });
    this.tabs.replaceChildren(...tabs);
    this.tabs.hidden = tabs.length === 0;
  }

  private renderToolbar(): void {
    const pane = this.activePane();
    this.actions.hidden = pane === null;
    if (!pane) {
      this.toolbarTitle.textContent = 'Terminals';
      this.toolbarMeta.textContent = '';
      this.conversationsSlot.replaceChildren();
      this.contextGauge.watch(null);
      document.title = 'dispatch';
      return;
    }
    const session = pane.session ?? this.feed.get(pane.sessionId) ?? null;
    const title = sessionTitle(session, pane.sessionId);
    this.toolbarTitle.textContent = title;
    const meta: string[] = [];
    if (session) {
      meta.push(session.mode);
      if (session.cols && session.rows) meta.push(`${session.cols}×${session.rows}`);
      if (session.viewers && session.viewers > 1) meta.push(`${session.viewers} viewers`);
    }
    this.toolbarMeta.textContent = meta.join(' · ');
    const href = session?.mode === 'claude' && session.cwd ? conversationsForDirectory(session.cwd) : null;
    this.contextGauge.watch(session?.mode === 'claude' ? (session.cwd ?? null) : null);
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
    const ended = pane.state.kind === 'ended' || session?.status === 'exited';
    for (const id of ['end-session', 'rename-session']) {
      const button = this.actions.querySelector<HTMLButtonElement>(`[data-testid="${id}"]`);
      if (button) button.disabled = ended;
    }
    document.title = `${title} · dispatch`;
  }

  private renderList(): void {
    // While the list is not live, its statuses may be stale: no green dots then.
    this.list.dataset.live = String(this.feed.state.kind === 'open');
    if (this.feed.ready && this.feed.state.kind === 'open') this.pruneDismissed();
    const sessions = this.feed.list.filter((session) => !(session.status === 'exited' && this.dismissed.has(session.id)));
    const seen = new Set<string>();
    for (const session of sessions) {
      seen.add(session.id);
      let item = this.listItems.get(session.id);
      if (!item) {
        item = h('li', { class: 'session-item', testid: 'session-item' });
        this.listItems.set(session.id, item);
      }
      this.fillItem(item, session);
      this.list.appendChild(item);
    }
    for (const [id, item] of this.listItems) {
      if (!seen.has(id)) {
        item.remove();
        this.listItems.delete(id);
      }
    }
    const feedState = this.feed.state;
    this.listEmpty.hidden = sessions.length > 0;
    if (!this.feed.ready) {
      this.listEmpty.textContent =
        feedState.kind === 'waiting' && feedState.reason === 'broker' ? 'The broker is unreachable.' : 'Loading sessions…';
    } else {
      this.listEmpty.textContent = 'No sessions yet.';
    }
  }

  private fillItem(item: HTMLLIElement, session: Session): void {
    const now = Date.now();
    item.dataset.sessionId = session.id;
    item.dataset.status = session.status;
    item.dataset.mode = session.mode;
    item.dataset.name = session.name ?? '';
    item.classList.toggle('active', session.id === this.activeId);
    item.classList.toggle('open', this.panes.has(session.id));
    const meta = [session.mode];
    if (session.requestedMode && session.requestedMode !== session.mode) meta.push(`asked for ${session.requestedMode}`);
    if (session.status === 'exited') {
      meta.push(session.exitSignal ? `ended by ${session.exitSignal}` : `exited ${session.exitCode ?? ''}`.trim());
    } else if (session.viewers) {
      meta.push(`${session.viewers} viewer${session.viewers === 1 ? '' : 's'}`);
    }
    const created = h('span', { text: `created ${relativeTime(session.createdAt, now)}`, title: absoluteTime(session.createdAt) });
    const active = h('span', { text: `active ${relativeTime(session.lastActive, now)}`, title: absoluteTime(session.lastActive) });
    const button = h(
      'button',
      {
        class: 'session-open',
        attrs: { type: 'button', 'aria-current': session.id === this.activeId ? 'true' : null },
        on: { click: () => navigate(VIEW, [session.id]) },
      },
      h('span', {
        class: 'status-dot',
        attrs: {
          'data-status': session.status,
          'aria-label': this.feed.state.kind === 'open' ? session.status : `${session.status} (not connected: may be out of date)`,
          role: 'img',
        },
      }),
      h(
        'span',
        { class: 'session-main' },
        h('span', { class: 'session-name', text: sessionTitle(session, session.id) }, attentionBadge(session)),
        h('span', { class: 'session-meta', text: meta.join(' · ') }),
      ),
      h('span', { class: 'session-times' }, created, active),
    );
    if (session.status === 'exited') {
      const dismiss = h(
        'button',
        {
          class: 'icon-button session-dismiss',
          testid: 'dismiss-session',
          title: 'Remove from the list',
          attrs: { type: 'button', 'aria-label': `Remove ${sessionTitle(session, session.id)} from the list` },
          on: { click: () => this.dismiss(session.id) },
        },
        icon('close'),
      );
      item.replaceChildren(button, dismiss);
    } else {
      item.replaceChildren(button);
    }
  }

  /** Hides an ended session from this browser's list (and closes its tab). */
  private dismiss(id: string): void {
    this.dismissed.add(id);
    localStorage.setItem(DISMISSED_KEY, JSON.stringify([...this.dismissed]));
    if (this.panes.has(id)) this.closePane(id);
    this.renderList();
  }

  /** Forgets dismissed sessions the broker no longer has. */
  private pruneDismissed(): void {
    let changed = false;
    for (const id of this.dismissed) {
      if (!this.feed.get(id)) {
        this.dismissed.delete(id);
        changed = true;
      }
    }
    if (changed) localStorage.setItem(DISMISSED_KEY, JSON.stringify([...this.dismissed]));
  }

  private iconButton(
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
}

export function terminalsView(shell: Shell): ViewDefinition {
  return { name: VIEW, title: 'Terminals', create: () => new TerminalsView(shell) };
}
