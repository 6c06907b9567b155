//! The conversations view: Claude Code history, read-only. `#/conversations`
//! lists conversations grouped by project (filter, full-text search, live
//! status from the server-sent feed); `#/conversations/<id>` shows one
//! (Markdown through a sanitiser, thinking collapsed, tool calls expandable
//! to input and result, images as thumbnails, scrolling loads older and
//! newer pages, search with next/previous, resume in a new session);
//! `#/conversations/project/<cwd>` lists one working directory's.

import './conversations.css';

import { ApiError } from '../app/api';
import { h, icon, replaceChildren } from '../app/dom';
import { absoluteTime, relativeTime } from '../app/format';
import { navigate, type Route, type View, type ViewDefinition } from '../app/router';
import type { Shell } from '../app/shell';
import { toast } from '../app/toast';
import {
  exportUrl,
  getConversation,
  getMessages,
  listConversations,
  resume,
  search,
  type Block,
  type Conversation,
  type ImageBlock,
  type Message,
  type SearchHit,
  type ToolResult,
} from './api';
import { markdownElement } from './markdown';
import { usd } from '../usage/format';

const VIEW = 'conversations';

function errorText(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

function compact(n: number): string {
  return Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

/** The estimated cost, with a mark when some models have no price. */
function costText(c: Conversation): string {
  return `~${usd(c.costUsd ?? 0)}${c.unpricedModels?.length ? ' + no price' : ''}`;
}

function costTitle(c: Conversation): string {
  const unpriced = c.unpricedModels?.length ? `; no price for ${c.unpricedModels.join(', ')}` : '';
  return `Estimated cost, subagents included${unpriced}`;
}

function shortPath(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : path || '(no project)';
}

/** The list of conversations, grouped by project. */
class ConversationList {
  readonly element: HTMLElement;
  private readonly groups = h('div', { class: 'conv-groups' });
  private readonly more = h('div', { class: 'conv-more' });
  private readonly searchInput: HTMLInputElement;
  private readonly scopeLabel = h('div', { class: 'conv-scope' });
  private readonly hitsBox = h('div', { class: 'conv-hits', attrs: { hidden: true } });
  private items = new Map<string, Conversation>();
  private order: string[] = [];
  private cursor: string | null = null;
  private loading = false;
  private generation = 0;
  project: string | null = null;
  private filterTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly observer: IntersectionObserver;

  constructor(private readonly open: (id: string, index?: number) => void) {
    this.searchInput = h('input', {
      class: 'input conv-search',
      testid: 'conversation-search',
      attrs: { type: 'search', placeholder: 'Filter, or Enter to search messages', 'aria-label': 'Search conversations' },
      on: {
        input: () => this.scheduleFilter(),
        keydown: (event: KeyboardEvent) => {
          if (event.key === 'Enter') void this.searchNow();
        },
      },
    });
    this.element = h(
      'section',
      { class: 'conv-list' },
      h('div', { class: 'conv-list-head' }, this.searchInput, this.scopeLabel),
      this.hitsBox,
      this.groups,
      this.more,
    );
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) void this.loadMore();
    });
    this.observer.observe(this.more);
  }

  setProject(project: string | null): void {
    if (project === this.project && this.order.length) return;
    this.project = project;
    replaceChildren(
      this.scopeLabel,
      project
        ? h('span', {}, 'In ', h('code', { text: project }), ' ', h('a', { text: 'show all', attrs: { href: '#/conversations' } }))
        : null,
    );
    void this.reload();
  }

  /**
   * Enter: the title filter typed so far first (had its delay not run out,
   * it would hide the results when it did), then the messages.
   */
  private async searchNow(): Promise<void> {
    if (this.filterTimer) {
      clearTimeout(this.filterTimer);
      this.filterTimer = null;
      await this.reload();
    }
    await this.searchMessages();
  }

  private scheduleFilter(): void {
    if (this.filterTimer) clearTimeout(this.filterTimer);
    this.filterTimer = setTimeout(() => {
      this.filterTimer = null;
      void this.reload();
    }, 250);
  }

  async reload(): Promise<void> {
    this.generation += 1;
    this.items.clear();
    this.order = [];
    this.cursor = null;
    this.hitsBox.hidden = true;
    this.groups.replaceChildren();
    await this.loadMore(true);
  }

  private async loadMore(first = false): Promise<void> {
    if (this.loading || (!first && this.cursor === null)) return;
    this.loading = true;
    const generation = this.generation;
    this.more.textContent = 'Loading…';
    try {
      const page = await listConversations({ q: this.searchInput.value.trim(), project: this.project ?? undefined, cursor: this.cursor });
      if (generation !== this.generation) return;
      for (const c of page.conversations) {
        if (!this.items.has(c.id)) this.order.push(c.id);
        this.items.set(c.id, c);
      }
      this.cursor = page.nextCursor;
      this.render();
      this.more.textContent = this.cursor ? '' : this.order.length ? `${page.total} conversations` : this.emptyText();
    } catch (error) {
      this.more.textContent = `Cannot load conversations: ${errorText(error)}`;
    } finally {
      this.loading = false;
    }
    // Keep filling while the sentinel is still on screen.
    if (this.cursor && this.more.getBoundingClientRect().top < window.innerHeight) void this.loadMore();
  }

  /** What an empty list says: nothing at all, or nothing matching the filter. */
  private emptyText(): string {
    const q = this.searchInput.value.trim();
    if (q) return `No conversation title or folder matches “${q}”.`;
    return this.project ? 'No conversations in this folder yet.' : 'No conversations yet.';
  }

  /** A change from the live feed. */
  upsert(conversation: Conversation): void {
    if (this.project && conversation.project !== this.project) return;
    const filter = this.searchInput.value.trim().toLowerCase();
    if (filter && !`${conversation.title}\n${conversation.project}`.toLowerCase().includes(filter)) return;
    this.items.set(conversation.id, conversation);
    this.order = [conversation.id, ...this.order.filter((id) => id !== conversation.id)];
    this.render();
  }

  remove(id: string): void {
    if (!this.items.delete(id)) return;
    this.order = this.order.filter((o) => o !== id);
    this.render();
  }

  /** Re-labels active/recent/idle as time passes. */
  tick(): void {
    const now = Date.now();
    for (const c of this.items.values()) {
      const age = now - c.lastActivity;
      c.status = age < 120_000 ? 'active' : age < 3_600_000 ? 'recent' : 'idle';
    }
    this.render();
  }

  private render(): void {
    const byProject = new Map<string, Conversation[]>();
    for (const id of this.order) {
      const c = this.items.get(id);
      if (!c) continue;
      const list = byProject.get(c.project) ?? [];
      list.push(c);
      byProject.set(c.project, list);
    }
    const groups = [...byProject.entries()].map(([project, list]) =>
      h(
        'div',
        { class: 'conv-group' },
        h('h3', { class: 'conv-group-title', title: project, text: shortPath(project) }),
        ...list.map((c) => this.item(c)),
      ),
    );
    this.groups.replaceChildren(...groups);
  }

  private item(c: Conversation): HTMLElement {
    const tokens = c.tokens.input + c.tokens.output + c.tokens.cacheCreation + c.tokens.cacheRead;
    return h(
      'button',
      {
        class: `conv-item status-${c.status}`,
        testid: 'conversation-item',
        attrs: { type: 'button', 'data-id': c.id },
        on: { click: () => this.open(c.id) },
      },
      h('span', { class: 'conv-dot', title: c.status, attrs: { 'aria-label': c.status } }),
      h('span', { class: 'conv-title', text: c.title || 'Untitled conversation' }),
      h(
        'span',
        { class: 'conv-meta' },
        h('span', { text: relativeTime(c.lastActivity), title: absoluteTime(c.lastActivity) }),
        h('span', { text: `${c.messageCount} messages` }),
        h('span', { text: `${compact(tokens)} tokens` }),
        h('span', { class: 'conv-cost', text: costText(c), title: costTitle(c) }),
        c.subagents.length ? h('span', { text: `${c.subagents.length} subagents` }) : null,
        c.damagedLines ? h('span', { class: 'conv-warn', text: `${c.damagedLines} damaged lines skipped` }) : null,
      ),
    );
  }

  /** Full-text search across all conversations. */
  private async searchMessages(): Promise<void> {
    const q = this.searchInput.value.trim();
    if (q.length < 2) return;
    this.hitsBox.hidden = false;
    this.hitsBox.textContent = 'Searching…';
    try {
      const hits = await search(q, undefined, 100);
      replaceChildren(
        this.hitsBox,
        h('div', { class: 'conv-hits-head', text: hits.length ? `${hits.length} matching messages` : 'No message matches.' }),
        ...hits.map((hit) => this.hit(hit)),
      );
    } catch (error) {
      this.hitsBox.textContent = errorText(error);
    }
  }

  private hit(hit: SearchHit): HTMLElement {
    return h(
      'button',
      { class: 'conv-hit', attrs: { type: 'button' }, on: { click: () => this.open(hit.conversationId, hit.messageIndex) } },
      h('span', { class: 'conv-title', text: hit.title || hit.conversationId }),
      h('span', { class: 'conv-snippet', text: hit.snippet }),
    );
  }

  dispose(): void {
    this.observer.disconnect();
  }
}

/** A one-line, expandable tool call with its joined result. */
function toolCall(block: Extract<Block, { type: 'tool_call' }>): HTMLElement {
  const failed = block.result?.isError ?? false;
  const details = h(
    'details',
    { class: `tool-call${failed ? ' tool-error' : ''}`, testid: 'tool-call' },
    h(
      'summary',
      {},
      h('span', { class: 'tool-name', text: block.name }),
      h('span', { class: 'tool-summary', text: block.summary }),
      failed ? h('span', { class: 'tool-badge', text: 'error' }) : null,
      block.result ? null : h('span', { class: 'tool-badge pending', text: 'no result' }),
    ),
    h('div', { class: 'tool-label', text: block.inputTruncated ? 'Input (cut)' : 'Input' }),
    h('pre', { class: 'tool-input', text: block.input }),
    block.result ? toolResult(block.result) : null,
  );
  return details;
}

function toolResult(result: ToolResult): HTMLElement {
  return h(
    'div',
    { class: `tool-result${result.isError ? ' tool-error' : ''}`, testid: 'tool-result' },
    h('div', { class: 'tool-label', text: result.isError ? 'Error' : result.truncated ? `Result (cut, ${compact(result.sizeBytes)} bytes)` : 'Result' }),
    h('pre', { text: result.text }),
    ...result.images.map(image),
  );
}

function image(block: ImageBlock): HTMLElement {
  if (!block.data) return h('div', { class: 'conv-image-missing', text: `[image ${block.mediaType}, ${compact(block.sizeBytes)} bytes]` });
  const img = h('img', {
    class: 'conv-thumb',
    attrs: { src: `data:${block.mediaType};base64,${block.data}`, alt: 'image', loading: 'lazy' },
  });
  img.addEventListener('click', () => img.classList.toggle('expanded'));
  return img;
}

function blockElement(block: Block): HTMLElement | null {
  switch (block.type) {
    case 'text':
      return markdownElement(block.text);
    case 'thinking':
      return h('details', { class: 'thinking' }, h('summary', { text: 'Thinking' }), markdownElement(block.thinking));
    case 'tool_call':
      return toolCall(block);
    case 'image':
      return image(block);
    case 'tool_result':
      return toolResult(block);
    default:
      return null;
  }
}

function messageElement(message: Message): HTMLElement {
  const who = message.role === 'assistant' ? 'Claude' : message.isMeta ? 'Context' : message.isCompactSummary ? 'Summary' : 'You';
  return h(
    'article',
    {
      class: `message role-${message.role}${message.isMeta ? ' meta' : ''}`,
      testid: 'message',
      attrs: { 'data-index': message.index },
    },
    h(
      'header',
      { class: 'message-head' },
      h('span', { class: 'message-who', text: who }),
      h('span', { class: 'message-time', text: relativeTime(message.timestamp), title: absoluteTime(message.timestamp) }),
      message.model ? h('span', { class: 'message-model', text: message.model }) : null,
    ),
    ...message.blocks.map(blockElement),
  );
}

/** One conversation's messages, loaded page by page in both directions. */
class Thread {
  readonly element: HTMLElement;
  private readonly title = h('h2', { class: 'thread-title' });
  private readonly meta = h('div', { class: 'thread-meta' });
  private readonly list = h('div', { class: 'thread-messages' });
  private readonly top = h('div', { class: 'thread-edge', text: '' });
  private readonly bottom = h('div', { class: 'thread-edge', text: '' });
  private readonly scroller: HTMLElement;
  private readonly findInput: HTMLInputElement;
  private readonly findCount = h('span', { class: 'find-count' });
  private readonly observer: IntersectionObserver;
  private conversation: Conversation | null = null;
  id: string | null = null;
  private before: string | null = null;
  private after: string | null = null;
  private lastIndex = -1;
  private loading = false;
  private generation = 0;
  private hits: number[] = [];
  private hitAt = -1;
  private lastQuery = '';

  constructor(private readonly back: () => void) {
    this.findInput = h('input', {
      class: 'input find-input',
      attrs: { type: 'search', placeholder: 'Find in conversation', 'aria-label': 'Find in conversation' },
      on: {
        keydown: (event: KeyboardEvent) => {
          if (event.key === 'Enter') void this.find(event.shiftKey ? -1 : 1);
        },
      },
    });
    const button = (label: string, name: Parameters<typeof icon>[0], onClick: () => void, testid?: string) =>
      h('button', { class: 'button icon-button', title: label, testid, attrs: { type: 'button', 'aria-label': label }, on: { click: onClick } }, icon(name));
    this.scroller = h('div', { class: 'thread-scroll' }, this.top, this.list, this.bottom);
    const empty = h(
      'div',
      { class: 'thread-empty', testid: 'thread-empty' },
      h('p', { text: 'Choose a conversation to read it here, resume it or export it.' }),
    );
    this.element = h(
      'section',
      { class: 'thread', attrs: { 'data-empty': 'true', 'aria-label': 'Conversation' } },
      empty,
      h(
        'div',
        { class: 'thread-head' },
        button('Back to the list', 'left', () => this.back()),
        h('div', { class: 'thread-heading' }, this.title, this.meta),
      ),
      h(
        'div',
        { class: 'thread-tools' },
        this.findInput,
        this.findCount,
        button('Previous match', 'up', () => void this.find(-1), 'find-previous'),
        button('Next match', 'down', () => void this.find(1), 'find-next'),
        h('button', { class: 'button', testid: 'resume-conversation', text: 'Resume in a new session', attrs: { type: 'button' }, on: { click: () => void this.resume() } }),
        h('a', { class: 'button', text: 'Export', attrs: { href: '#', download: '' }, on: { click: (e: MouseEvent) => this.exportLink(e) } }),
      ),
      this.scroller,
    );
    this.observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          if (entry.target === this.top) void this.loadOlder();
          if (entry.target === this.bottom) void this.loadNewer();
        }
      },
      { root: this.scroller, rootMargin: '400px 0px' },
    );
    this.observer.observe(this.top);
    this.observer.observe(this.bottom);
  }

  private exportLink(event: MouseEvent): void {
    if (!this.id) return event.preventDefault();
    (event.currentTarget as HTMLAnchorElement).href = exportUrl(this.id);
  }

  /** Shows no conversation (the empty state, without its tools). */
  clear(): void {
    this.generation += 1;
    this.id = null;
    this.conversation = null;
    this.element.dataset.empty = 'true';
  }

  /** Opens a conversation, at its end or around message `index`. */
  async open(id: string, index?: number): Promise<void> {
    const same = this.id === id;
    this.id = id;
    this.element.dataset.empty = 'false';
    if (!same) {
      this.hits = [];
      this.hitAt = -1;
      this.findCount.textContent = '';
      this.lastQuery = '';
    }
    this.generation += 1;
    const generation = this.generation;
    try {
      const conversation = await getConversation(id);
      if (generation !== this.generation) return;
      this.setConversation(conversation);
    } catch (error) {
      this.title.textContent = 'Conversation unavailable';
      this.meta.textContent = errorText(error);
      this.list.replaceChildren();
      return;
    }
    await this.loadAround(index);
  }

  private setConversation(c: Conversation): void {
    this.conversation = c;
    this.title.textContent = c.title || 'Untitled conversation';
    const tokens = c.tokens;
    replaceChildren(
      this.meta,
      h('code', { text: c.project, title: 'Working directory' }),
      ` · ${c.messageCount} messages · ${compact(tokens.input + tokens.cacheCreation + tokens.cacheRead)} in / ${compact(tokens.output)} out · ${c.models.join(', ')} · `,
      h('span', { class: 'conv-cost', testid: 'conversation-cost', text: costText(c), title: costTitle(c) }),
    );
    document.title = `${c.title || 'Conversation'} · dispatch`;
  }

  private async loadAround(index?: number): Promise<void> {
    const generation = this.generation;
    const page =
      index === undefined
        ? await getMessages(this.id!, { from: 'end' })
        : await getMessages(this.id!, { cursor: `a${Math.max(0, index - 5)}` });
    if (generation !== this.generation) return;
    this.list.replaceChildren(...page.messages.map(messageElement));
    this.before = page.beforeCursor;
    this.after = page.afterCursor;
    this.lastIndex = page.messages.length ? page.messages[page.messages.length - 1].index : -1;
    this.updateEdges();
    if (index === undefined) this.scroller.scrollTop = this.scroller.scrollHeight;
    else this.reveal(index);
  }

  private updateEdges(): void {
    this.top.textContent = this.before ? 'Loading older messages…' : 'Start of the conversation';
    this.bottom.textContent = this.after ? 'Loading newer messages…' : '';
  }

  private async loadOlder(): Promise<void> {
    if (!this.id || !this.before || this.loading) return;
    this.loading = true;
    const generation = this.generation;
    try {
      const page = await getMessages(this.id, { cursor: this.before });
      if (generation !== this.generation) return;
      const height = this.scroller.scrollHeight;
      this.list.prepend(...page.messages.map(messageElement));
      this.scroller.scrollTop += this.scroller.scrollHeight - height;
      this.before = page.beforeCursor;
      this.updateEdges();
    } catch (error) {
      toast(`Cannot load messages: ${errorText(error)}`, 'error');
    } finally {
      this.loading = false;
    }
  }

  /** Loads newer messages (scrolling down, or the feed saw an append). */
  async loadNewer(live = false): Promise<void> {
    if (!this.id || this.loading) return;
    const cursor = this.after ?? (live ? `a${this.lastIndex + 1}` : null);
    if (!cursor) return;
    this.loading = true;
    const generation = this.generation;
    const atBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 80;
    try {
      const page = await getMessages(this.id, { cursor });
      if (generation !== this.generation) return;
      // A merged response may have grown: replace the messages we show again.
      for (const message of page.messages) {
        this.list.querySelector(`[data-index="${message.index}"]`)?.remove();
      }
      this.list.append(...page.messages.map(messageElement));
      if (page.messages.length) this.lastIndex = page.messages[page.messages.length - 1].index;
      this.after = page.afterCursor;
      this.updateEdges();
      if (live && atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    } catch (error) {
      if (!live) toast(`Cannot load messages: ${errorText(error)}`, 'error');
    } finally {
      this.loading = false;
    }
  }

  /** The conversation changed (live feed). */
  update(conversation: Conversation): void {
    if (conversation.id !== this.id) return;
    this.setConversation(conversation);
    if (!this.after) void this.loadNewer(true);
  }

  private reveal(index: number): void {
    const element = this.list.querySelector<HTMLElement>(`[data-index="${index}"]`);
    if (!element) return;
    for (const old of this.list.querySelectorAll('.message.found')) old.classList.remove('found');
    element.classList.add('found');
    element.scrollIntoView({ block: 'center' });
  }

  /** Next (1) or previous (-1) message matching the find box. */
  private async find(step: number): Promise<void> {
    const q = this.findInput.value.trim();
    if (!this.id || q.length < 2) return;
    if (q !== this.lastQuery) {
      this.lastQuery = q;
      try {
        const hits = await search(q, this.id, 1000);
        this.hits = [...new Set(hits.map((hit) => hit.messageIndex))].sort((a, b) => a - b);
      } catch (error) {
        this.findCount.textContent = errorText(error);
        return;
      }
      this.hitAt = step > 0 ? -1 : this.hits.length;
    }
    if (!this.hits.length) {
      this.findCount.textContent = 'no match';
      return;
    }
    this.hitAt = (this.hitAt + step + this.hits.length) % this.hits.length;
    this.findCount.textContent = `${this.hitAt + 1} / ${this.hits.length}`;
    const index = this.hits[this.hitAt];
    if (this.list.querySelector(`[data-index="${index}"]`)) this.reveal(index);
    else {
      this.generation += 1;
      await this.loadAround(index);
    }
  }

  private async resume(): Promise<void> {
    if (!this.conversation) return;
    try {
      const { session, folderMissing } = await resume(this.conversation);
      if (session.fallbackReason) {
        toast(`Not resumed: Claude Code is not available: ${session.fallbackReason}. A shell runs instead.`, 'error');
      } else if (folderMissing) {
        toast(`The conversation's folder ${this.conversation.project} no longer exists: resumed in the session's own folder.`);
      }
      navigate('terminals', [session.id]);
    } catch (error) {
      toast(`Cannot resume: ${errorText(error)}`, 'error');
    }
  }

  dispose(): void {
    this.observer.disconnect();
  }
}

/** The live feed of conversation changes (server-sent events). */
class Feed {
  private source: EventSource | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly onChange: (c: Conversation) => void,
    private readonly onRemove: (id: string) => void,
    private readonly onState: (live: boolean) => void,
  ) {}

  start(): void {
    if (this.source) return;
    const source = new EventSource('/api/conversations/events');
    this.source = source;
    source.addEventListener('ready', () => this.onState(true));
    source.addEventListener('changed', (event) => {
      const data = JSON.parse((event as MessageEvent<string>).data) as { conversation?: Conversation };
      if (data.conversation) this.onChange(data.conversation);
    });
    source.addEventListener('removed', (event) => {
      this.onRemove((JSON.parse((event as MessageEvent<string>).data) as { id: string }).id);
    });
    source.onerror = () => {
      this.onState(false);
      if (source.readyState === EventSource.CLOSED) {
        this.stop();
        this.retry = setTimeout(() => this.start(), 5000);
      }
    };
  }

  stop(): void {
    this.source?.close();
    this.source = null;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }
}

class ConversationsView implements View {
  readonly element = h('div', { class: 'conversations-view' });
  private readonly list: ConversationList;
  private readonly thread: Thread;
  private readonly feed: Feed;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private live = false;

  constructor(private readonly shell: Shell) {
    this.list = new ConversationList((id, index) => navigate(VIEW, index === undefined ? [id] : [id, String(index)]));
    this.thread = new Thread(() => navigate(VIEW, this.list.project ? ['project', this.list.project] : []));
    this.feed = new Feed(
      (c) => {
        this.list.upsert(c);
        this.thread.update(c);
      },
      (id) => this.list.remove(id),
      (live) => {
        this.live = live;
        this.renderStatus();
      },
    );
    this.element.append(this.list.element, this.thread.element);
  }

  show(route: Route): void {
    this.feed.start();
    if (!this.ticker) this.ticker = setInterval(() => this.list.tick(), 30_000);
    const [first, second] = route.params;
    if (first === 'project') {
      this.list.setProject(second ?? null);
      this.showThread(false);
    } else if (first) {
      if (!this.element.dataset.loaded) this.list.setProject(null);
      const index = second === undefined ? undefined : Number(second);
      void this.thread.open(first, Number.isFinite(index) ? index : undefined);
      this.showThread(true);
    } else {
      this.list.setProject(null);
      this.thread.clear();
      this.showThread(false);
      document.title = 'Conversations · dispatch';
    }
    this.element.dataset.loaded = '1';
    this.renderStatus();
  }

  private showThread(visible: boolean): void {
    this.element.classList.toggle('thread-open', visible);
  }

  private renderStatus(): void {
    this.shell.setStatus(this.live ? { state: 'live', label: 'Live', tone: 'ok' } : { state: 'connecting', label: 'Connecting', tone: 'busy' });
  }

  hide(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  dispose(): void {
    this.hide();
    this.feed.stop();
    this.list.dispose();
    this.thread.dispose();
  }
}

export function conversationsView(shell: Shell): ViewDefinition {
  return { name: VIEW, title: 'Conversations', icon: 'conversations', create: () => new ConversationsView(shell) };
}

/** The route listing a working directory's conversations (for a claude session). */
export function conversationsForDirectory(cwd: string): string {
  return `#/${VIEW}/project/${encodeURIComponent(cwd)}`;
}
