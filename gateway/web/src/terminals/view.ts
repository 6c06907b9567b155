//! The terminals view (`#/terminals/<id>`): puts together the sidebar
//! (session list, new-session form), the tabs of open terminals, the
//! toolbar, the search bar, the active terminal and the phone key bar, and
//! keeps them in step with the live session list and the panes. Open tabs
//! survive a reload and reattach, the gateway replaying their screens.
//! Features hook in through extension.ts (listed in extensions.ts).

import { sessionsApi, type Session, type SessionMode } from '../app/api';
import { AttentionWatch } from '../app/attention';
import { auth } from '../app/auth';
import { guardShortcutClose } from '../app/close-guard';
import { h, icon } from '../app/dom';
import { navigate, type Route, type View, type ViewDefinition } from '../app/router';
import type { Shell } from '../app/shell';
import { currentScheme, onSchemeChange } from '../app/theme';
import { toast } from '../app/toast';
import type { LinkState } from '../app/reconnect';
import type { ActiveTerminal, TerminalsExtension, TerminalsExtensionHost } from './extension';
import { TERMINALS_EXTENSIONS } from './extensions';
import { SessionFeed } from './feed';
import { changeFontSize, storedFontSize } from './font-size';
import { Keybar, type ScrollTo } from './keybar';
import { StickyModifiers } from './modifiers';
import { OpenPanes, storedOpenIds } from './open-panes';
import { SHORTCUTS_HELP, TerminalPane, type PaneHost, type Shortcut } from './pane';
import { SearchBar } from './search-bar';
import { copySelection, endSession, pasteClipboard, renameSession, toggleFullscreen } from './session-actions';
import { sessionTitle } from './session-list';
import { Sidebar } from './sidebar';
import { describeFeed, describeState } from './status';
import { Tabs } from './tabs';
import { Toolbar, toolbarButton } from './toolbar';
import { exposeTerminalsTestHooks } from './view-test-hooks';

export { sessionTitle } from './session-list';

const VIEW = 'terminals';

class TerminalsView implements View, PaneHost {
  readonly element: HTMLElement;
  private readonly feed: SessionFeed;
  private readonly panes = new OpenPanes();
  private activeId: string | null = null;
  /** Told of every pane change (a test hook records the announced sizes). */
  private paneChangedHook: ((pane: TerminalPane) => void) | null = null;
  private readonly modifiers = new StickyModifiers();
  /** The tab to give the focus to once it is open (moving along the tabs by keyboard). */
  private focusTabOnOpen: string | null = null;
  private fontSize = storedFontSize();
  private visible = false;
  private started = false;
  private ticks = 0;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private readonly unsubscribeScheme: () => void;
  private readonly unguardClose: () => void;

  private readonly sidebar: Sidebar;
  private readonly tabs: Tabs;
  private readonly toolbar: Toolbar;
  private readonly searchBar: SearchBar;
  private readonly area: HTMLElement;
  private readonly emptyState: HTMLElement;
  private readonly keybar: Keybar;
  private readonly workspace: HTMLElement;
  /** The title's count and notifications of sessions that need their user. */
  private readonly attention = new AttentionWatch((id) => navigate(VIEW, [id]));
  private readonly activeListeners = new Set<(active: ActiveTerminal | null) => void>();
  private readonly extensions: TerminalsExtension[] = [];

  constructor(private readonly shell: Shell) {
    this.feed = new SessionFeed({
      onChange: () => {
        this.sidebar.list.render();
        this.attention.update(this.feed.list);
      },
      onState: (state) => this.feedState(state),
    });
    this.sidebar = new Sidebar(this.feed, {
      activeId: () => this.activeId,
      isOpen: (id) => this.panes.has(id),
      open: (id) => navigate(VIEW, [id]),
      dismissed: (id) => this.closePane(id),
      create: (mode, name) => this.createSession(mode, name),
      created: (session) => {
        this.openPane(session.id);
        navigate(VIEW, [session.id]);
      },
      toggled: (open) => this.formToggled(open),
    });
    this.tabs = new Tabs({
      open: (id) => navigate(VIEW, [id]),
      close: (id) => this.closePane(id),
      focusActive: () => this.activePane()?.focus(),
      step: (step) => this.switchTab(step, true),
    });
    this.toolbar = new Toolbar(() => this.toggleDrawer());
    this.searchBar = new SearchBar(() => this.activePane());
    this.area = h('div', { class: 'terminal-area', testid: 'terminal', attrs: { 'aria-description': SHORTCUTS_HELP } });
    this.emptyState = this.emptyStateElement();
    this.keybar = new Keybar(this.modifiers, () => this.keybarTarget());
    this.workspace = h(
      'section',
      { class: 'workspace', attrs: { 'aria-label': 'Terminal' } },
      h('div', { class: 'workspace-head' }, this.tabs.element, this.toolbar.element),
      this.searchBar.element,
      this.area,
      this.emptyState,
      this.keybar.element,
    );
    const scrim = h('div', { class: 'scrim', on: { click: () => this.toggleDrawer(false) } });
    this.element = h('div', { class: 'terminals-view' }, this.sidebar.element, scrim, this.workspace);

    this.addOwnActions();
    for (const extension of TERMINALS_EXTENSIONS) {
      const made = extension(this.extensionHost());
      if (made) this.extensions.push(made);
    }
    this.addSessionActions();

    this.unsubscribeScheme = onSchemeChange((scheme) => {
      for (const pane of this.panes.all()) pane.setScheme(scheme);
    });
    window.addEventListener('online', this.online);
    document.addEventListener('visibilitychange', this.online);
    this.unguardClose = guardShortcutClose(() =>
      [...this.panes.all()].some((pane) => pane.state.kind === 'attached' || pane.state.kind === 'waiting'),
    );
    exposeTerminalsTestHooks({
      activeId: () => this.activeId,
      openIds: () => [...this.panes.ids],
      activePane: () => this.activePane(),
      onPaneChanged: (listener) => {
        this.paneChangedHook = listener;
      },
    });

    this.renderWorkspace();
  }

  private emptyStateElement(): HTMLElement {
    return h(
      'div',
      { class: 'empty-state' },
      icon('terminal'),
      h('h2', { text: 'No terminal open' }),
      h('p', { text: 'Create a session, or open one from the list.' }),
      h(
        'button',
        { class: 'button primary', testid: 'empty-new-session', attrs: { type: 'button' }, on: { click: () => this.sidebar.form.toggle(true) } },
        icon('plus'),
        h('span', { text: 'New session' }),
      ),
    );
  }

  /** Search, text size and full screen (before the features' buttons). */
  private addOwnActions(): void {
    this.toolbar.addAction(toolbarButton('search', 'Search the scrollback (Ctrl+Shift+F)', 'search-toggle', () => this.searchBar.open()));
    this.toolbar.addAction(toolbarButton('textSmaller', 'Smaller text', 'font-smaller', () => this.changeFont(-1)));
    this.toolbar.addAction(toolbarButton('textLarger', 'Larger text', 'font-larger', () => this.changeFont(1)));
    this.toolbar.addAction(
      toolbarButton('fullscreen', 'Full screen (the terminal also gets Ctrl+W, Ctrl+T and other browser keys)', 'fullscreen', () => {
        void toggleFullscreen().then(() => this.activePane()?.focus());
      }),
    );
  }

  /** Rename and end (after the features' buttons, disabled once the session ended). */
  private addSessionActions(): void {
    this.toolbar.addSessionAction(toolbarButton('edit', 'Rename the session', 'rename-session', () => void this.renameActive()));
    this.toolbar.addSessionAction(toolbarButton('power', 'End the session', 'end-session', () => void this.endActive(), 'danger'));
  }

  private extensionHost(): TerminalsExtensionHost {
    return {
      toolbar: this.toolbar,
      area: this.area,
      addPanel: (element) => this.workspace.insertBefore(element, this.area),
      active: () => this.activeTerminal(),
      onActiveChange: (listener) => {
        this.activeListeners.add(listener);
        return () => this.activeListeners.delete(listener);
      },
      notify: (text, tone = 'info') => toast(text, tone),
    };
  }

  private activeTerminal(): ActiveTerminal | null {
    const pane = this.activePane();
    if (!pane) return null;
    return { sessionId: pane.sessionId, session: pane.session ?? this.feed.get(pane.sessionId) ?? null, pane };
  }

  private keybarTarget(): ReturnType<ConstructorParameters<typeof Keybar>[1]> {
    const pane = this.activePane();
    if (!pane) return null;
    return {
      sendKeys: (data: string) => pane.sendKeys(data),
      applicationCursor: () => pane.term.modes.applicationCursorKeysMode,
      focus: () => pane.focus(),
      alternateScreen: () => pane.term.buffer.active.type === 'alternate',
      scroll: (to: ScrollTo) => pane.scroll(to),
      copy: () => copySelection(pane),
      paste: () => void pasteClipboard(pane),
    };
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
    } else if (this.panes.size) {
      const id = this.activeId && this.panes.has(this.activeId) ? this.activeId : this.panes.ids[this.panes.size - 1];
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
    this.panes.dispose();
    this.toolbar.stop();
    this.feed.dispose();
    for (const extension of this.extensions) extension.dispose?.();
    this.activeListeners.clear();
    this.unsubscribeScheme();
    this.unguardClose();
    window.removeEventListener('online', this.online);
    document.removeEventListener('visibilitychange', this.online);
  }

  /** The network or the page came back: retry what waits, check what looks open. */
  private readonly online = (): void => {
    if (document.visibilityState === 'hidden') return;
    this.feed.retry();
    for (const pane of this.panes.all()) {
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
    if (action === 'search') this.searchBar.open();
    else if (action === 'leave') this.tabs.focusSelected();
    else if (action === 'previous-tab' || action === 'next-tab') this.switchTab(action === 'next-tab' ? 1 : -1);
    else copySelection(pane, false);
  }

  closeRequested(pane: TerminalPane): void {
    this.closePane(pane.sessionId);
  }

  // Panes and tabs ---------------------------------------------------------

  /** Opens the tab `step` places from the active one (wrapping around). */
  private switchTab(step: number, focusTab = false): void {
    if (this.panes.size < 2 || !this.activeId) return;
    const next = this.panes.step(this.activeId, step);
    this.focusTabOnOpen = focusTab ? next : null;
    navigate(VIEW, [next]);
  }

  private activePane(): TerminalPane | null {
    return this.panes.get(this.activeId);
  }

  private openPane(id: string): TerminalPane {
    const open = this.panes.get(id);
    if (open) return open;
    const pane = new TerminalPane(id, this.feed.get(id), { fontSize: this.fontSize, scheme: currentScheme() }, this);
    this.searchBar.watch(pane);
    this.panes.add(pane);
    pane.hide();
    return pane;
  }

  private activate(id: string | null): void {
    if (id !== null && !this.panes.has(id)) id = null;
    const previous = this.activePane();
    this.activeId = id;
    const pane = this.activePane();
    if (previous && previous !== pane) previous.hide();
    this.searchBar.close(false);
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
    } else if (this.panes.size === 0) {
      this.toggleDrawer(true);
    }
    this.renderWorkspace();
    if (focusTab && id !== null) this.tabs.focus(id);
  }

  private closePane(id: string): void {
    const index = this.panes.remove(id);
    if (index < 0) return;
    if (this.activeId === id) {
      const next = this.panes.ids[Math.min(index, this.panes.size - 1)];
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

  // Actions ----------------------------------------------------------------

  private formToggled(open: boolean): void {
    if (open) this.toggleDrawer(true);
    else if (this.activePane()) {
      // On a phone the form opened the drawer over the terminal: give it back.
      this.toggleDrawer(false);
      this.activePane()?.focus();
    }
  }

  /** A new session, with the size of this screen. */
  private async createSession(mode: SessionMode, name: string): Promise<Session> {
    const size = this.activePane()?.fittedSize();
    const session = await sessionsApi.create({
      mode,
      ...(name ? { name } : {}),
      ...(size ? { cols: size.cols, rows: size.rows } : {}),
    });
    if (session.fallbackReason) toast(`Claude Code is not available: ${session.fallbackReason}. A shell runs instead.`);
    this.feed.upsert(session);
    return session;
  }

  private async renameActive(): Promise<void> {
    const pane = this.activePane();
    if (!pane) return;
    await renameSession(pane, (session) => {
      pane.session = session;
      this.feedSession(session);
      this.renderWorkspace();
    });
  }

  private async endActive(): Promise<void> {
    const pane = this.activePane();
    if (!pane) return;
    const title = sessionTitle(pane.session ?? this.feed.get(pane.sessionId), pane.sessionId);
    await endSession(pane, title, (session) => {
      if (session) this.feedSession(session);
      this.closePane(pane.sessionId);
    });
  }

  private changeFont(delta: number): void {
    this.fontSize = changeFontSize(this.fontSize, delta);
    for (const pane of this.panes.all()) pane.setFontSize(this.fontSize);
  }

  private toggleDrawer(open?: boolean): void {
    const next = open ?? this.element.dataset.drawer !== 'open';
    this.element.dataset.drawer = next ? 'open' : 'closed';
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
    this.sidebar.list.render();
  }

  /** Every second: the retry countdown; every 30 s: the list's relative times. */
  private tick(): void {
    this.renderStatus();
    this.ticks = (this.ticks + 1) % 30;
    if (this.ticks === 0) this.sidebar.list.render();
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
    this.sidebar.list.render();
    this.renderStatus();
    const hasPane = this.activePane() !== null;
    this.element.dataset.hasTerminal = String(hasPane);
    this.emptyState.hidden = hasPane;
  }

  private renderTabs(): void {
    const tabs = this.panes.ids.map((id) => {
      const pane = this.panes.get(id);
      const session = this.feed.get(id);
      return { id, title: sessionTitle(pane?.session ?? session, id), state: pane?.state.kind ?? 'connecting', session };
    });
    this.tabs.render(tabs, this.activeId);
  }

  private renderToolbar(): void {
    const active = this.activeTerminal();
    if (!active) {
      this.toolbar.render(null);
      document.title = 'dispatch';
    } else {
      const title = sessionTitle(active.session, active.sessionId);
      const ended = active.pane.state.kind === 'ended' || active.session?.status === 'exited';
      this.toolbar.render({ title, session: active.session, ended });
      document.title = `${title} · dispatch`;
    }
    for (const listener of this.activeListeners) listener(active);
  }
}

export function terminalsView(shell: Shell): ViewDefinition {
  return { name: VIEW, title: 'Terminals', icon: 'terminal', create: () => new TerminalsView(shell) };
}
