//! The usage view (`#/usage`): Claude usage and estimated cost for a period
//! (7, 30 or 90 days, or all): totals, a chart of cost or tokens per day
//! stacked by model (Chart.js), shares by model and by project, the most
//! expensive conversations as links, and a table of the same figures with a
//! CSV export. Days are the browser's local days (its IANA time zone).

import './usage.css';

import { ApiError } from '../app/api';
import { h, replaceChildren } from '../app/dom';
import { hashFor, type Route, type View, type ViewDefinition } from '../app/router';
import { csvUrl, getUsage, type GroupBy, type UsageGroup, type UsageParams, type UsageReport, type UsageTokens } from './api';
import { StackedChart, type Metric } from './chart';
import { usd } from './format';

const VIEW = 'usage';
const PERIODS: { days: number | null; label: string }[] = [
  { days: 7, label: '7 days' },
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: null, label: 'All' },
];

/** The browser's time zone, where its days begin. */
function timeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Local midnight `days - 1` days ago, or `null` for all time. */
export function periodStart(days: number | null, now = new Date()): number | null {
  if (days === null) return null;
  const start = new Date(now);
  start.setHours(0, 0, 0, 0);
  start.setDate(start.getDate() - (days - 1));
  return start.getTime();
}

/** `YYYY-MM-DD` of a local date. */
export function dayKey(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** Every local day from `first` through today. */
function daysFrom(first: string): string[] {
  const [y, m, d] = first.split('-').map(Number);
  const day = new Date(y, m - 1, d);
  const today = dayKey(new Date());
  const out: string[] = [];
  while (out.length < 3660) {
    const key = dayKey(day);
    out.push(key);
    if (key >= today) break;
    day.setDate(day.getDate() + 1);
  }
  return out;
}

function compact(n: number): string {
  return Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

function errorText(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

function shortPath(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : path || '(no project)';
}

function card(label: string, value: string, testid: string, detail?: string): HTMLElement {
  return h(
    'div',
    { class: 'usage-card' },
    h('div', { class: 'usage-card-label', text: label }),
    h('div', { class: 'usage-card-value', testid, text: value }),
    detail ? h('div', { class: 'usage-card-detail', text: detail }) : null,
  );
}

/** Rows of name, share meter and cost; the cost (tokens when unpriced) decides the share. */
function shares(title: string, groups: UsageGroup[], total: UsageGroup, name: (key: string) => string, testid: string): HTMLElement {
  const rows = groups.map((g) => {
    const share = total.costUsd > 0 ? g.costUsd / total.costUsd : total.tokens.total > 0 ? g.tokens.total / total.tokens.total : 0;
    const unpriced = g.models.some((m) => !m.priced && m.tokens.total > 0);
    return h(
      'li',
      { class: 'usage-share', testid, attrs: { 'data-key': g.key } },
      h('span', { class: 'usage-share-name', title: g.key, text: name(g.key) }),
      h('meter', { class: 'usage-share-meter', attrs: { min: 0, max: 1, value: share.toFixed(4), 'aria-label': `${name(g.key)} share` } }),
      h('span', { class: 'usage-share-value', text: `${usd(g.costUsd)}${unpriced ? ' + no price' : ''} · ${Math.round(share * 100)}%` }),
    );
  });
  return h('section', { class: 'usage-panel' }, h('h3', { text: title }), rows.length ? h('ul', { class: 'usage-shares' }, ...rows) : h('p', { class: 'usage-empty', text: 'No usage in this period.' }));
}

const TOKEN_COLUMNS: [keyof UsageTokens, string][] = [
  ['input', 'Input'],
  ['output', 'Output'],
  ['cacheWrite5m', 'Cache write 5m'],
  ['cacheWrite1h', 'Cache write 1h'],
  ['cacheRead', 'Cache read'],
  ['total', 'Total tokens'],
];

function tableRow(key: string, model: string, tokens: UsageTokens, cost: number | null, testid: string): HTMLElement {
  return h(
    'tr',
    { testid, attrs: { 'data-key': key, 'data-model': model, 'data-cost': cost === null ? '' : String(cost), 'data-tokens': String(tokens.total) } },
    h('th', { attrs: { scope: 'row' }, text: key }),
    h('td', { class: 'usage-model', text: model }),
    ...TOKEN_COLUMNS.map(([k]) => h('td', { class: 'num', text: tokens[k].toLocaleString() })),
    h('td', { class: 'num', text: cost === null ? 'no price' : usd(cost) }),
  );
}

function table(report: UsageReport): HTMLElement {
  const rows = report.groups.flatMap((g) => g.models.map((m) => tableRow(g.key, m.model, m.tokens, m.costUsd, 'usage-row')));
  const totals = report.totals;
  return h(
    'div',
    { class: 'usage-table-wrap', attrs: { tabindex: 0, role: 'region', 'aria-label': 'Usage per day and model' } },
    h(
      'table',
      { class: 'usage-table', testid: 'usage-table' },
      h('caption', { text: 'Usage per day and model' }),
      h('thead', {}, h('tr', {}, h('th', { attrs: { scope: 'col' }, text: 'Day' }), h('th', { attrs: { scope: 'col' }, text: 'Model' }), ...TOKEN_COLUMNS.map(([, label]) => h('th', { class: 'num', attrs: { scope: 'col' }, text: label })), h('th', { class: 'num', attrs: { scope: 'col' }, text: 'Cost' }))),
      h('tbody', {}, ...rows),
      h('tfoot', {}, tableRow('Total', '', totals.tokens, totals.costUsd, 'usage-total-row')),
    ),
  );
}

class UsageView implements View {
  readonly element = h('div', { class: 'usage-view', testid: 'usage-view' });
  private readonly body = h('div', { class: 'usage-body' });
  private readonly status = h('p', { class: 'usage-status', attrs: { role: 'status' } });
  private readonly periodButtons: HTMLButtonElement[];
  private readonly metricButtons: HTMLButtonElement[];
  private readonly csv = h('a', { class: 'usage-csv', testid: 'usage-csv', text: 'Export CSV', attrs: { download: 'claude-usage.csv' } });
  private readonly chart = new StackedChart();
  private days: number | null = 30;
  private metric: Metric = 'cost';
  private generation = 0;
  private byDay: UsageReport | null = null;

  constructor() {
    this.periodButtons = PERIODS.map((p) =>
      h('button', { class: 'usage-seg', testid: `usage-period-${p.days ?? 'all'}`, text: p.label, attrs: { type: 'button' }, on: { click: () => this.setPeriod(p.days) } }),
    );
    this.metricButtons = (['cost', 'tokens'] as Metric[]).map((m) =>
      h('button', { class: 'usage-seg', testid: `usage-metric-${m}`, text: m === 'cost' ? 'Cost' : 'Tokens', attrs: { type: 'button' }, on: { click: () => this.setMetric(m) } }),
    );
    const toolbar = h(
      'div',
      { class: 'usage-toolbar' },
      h('h2', { text: 'Usage' }),
      h('div', { class: 'usage-segs', attrs: { role: 'group', 'aria-label': 'Period' } }, ...this.periodButtons),
      h('div', { class: 'usage-segs', attrs: { role: 'group', 'aria-label': 'Chart shows' } }, ...this.metricButtons),
      this.csv,
    );
    this.element.append(toolbar, this.status, this.body);
  }

  show(_route: Route): void {
    document.title = 'Usage · dispatch';
    void this.load();
  }

  hide(): void {}

  dispose(): void {
    this.chart.destroy();
    this.body.replaceChildren();
    this.byDay = null;
  }

  private setPeriod(days: number | null): void {
    this.days = days;
    void this.load();
  }

  private setMetric(metric: Metric): void {
    this.metric = metric;
    this.markButtons();
    if (this.byDay) this.chart.draw(this.byDay, this.chartDays(this.byDay), metric);
  }

  private markButtons(): void {
    PERIODS.forEach((p, i) => this.periodButtons[i].setAttribute('aria-pressed', String(p.days === this.days)));
    (['cost', 'tokens'] as Metric[]).forEach((m, i) => this.metricButtons[i].setAttribute('aria-pressed', String(m === this.metric)));
  }

  private params(groupBy: GroupBy): UsageParams {
    return { since: periodStart(this.days), groupBy, tz: timeZone() };
  }

  private chartDays(report: UsageReport): string[] {
    const since = periodStart(this.days);
    const first = since !== null ? dayKey(new Date(since)) : report.groups[0]?.key;
    return first ? daysFrom(first) : [];
  }

  private async load(): Promise<void> {
    const generation = ++this.generation;
    this.markButtons();
    this.csv.href = csvUrl(this.params('day'));
    this.status.textContent = 'Loading…';
    this.element.dataset.state = 'loading';
    try {
      const [byDay, byModel, byProject] = await Promise.all((['day', 'model', 'project'] as GroupBy[]).map((g) => getUsage(this.params(g))));
      if (generation !== this.generation) return;
      this.byDay = byDay;
      this.render(byDay, byModel, byProject);
      this.status.textContent = '';
      this.element.dataset.state = 'ready';
    } catch (error) {
      if (generation !== this.generation) return;
      this.status.textContent = `Usage could not be loaded: ${errorText(error)}`;
      this.element.dataset.state = 'error';
    }
  }

  private render(byDay: UsageReport, byModel: UsageReport, byProject: UsageReport): void {
    const t = byDay.totals;
    const unpriced = byDay.unpricedModels;
    const totals = h(
      'div',
      { class: 'usage-cards' },
      card('Estimated cost', usd(t.costUsd), 'usage-total-cost', unpriced.length ? `plus ${unpriced.join(', ')}: no price` : undefined),
      card('Tokens', compact(t.tokens.total), 'usage-total-tokens'),
      card('Input / output', `${compact(t.tokens.input)} / ${compact(t.tokens.output)}`, 'usage-total-io'),
      card('Cache writes / reads', `${compact(t.tokens.cacheWrite5m + t.tokens.cacheWrite1h)} / ${compact(t.tokens.cacheRead)}`, 'usage-total-cache'),
    );
    const top = byDay.topConversations.map((c) =>
      h(
        'li',
        { class: 'usage-top-item' },
        h('a', { testid: 'usage-top-link', text: c.title || 'Untitled conversation', attrs: { href: hashFor('conversations', c.id) } }),
        h('span', { class: 'usage-top-meta', text: `${usd(c.costUsd)}${c.unpriced ? ' + no price' : ''} · ${compact(c.tokens.total)} tokens · ${shortPath(c.project)}` }),
      ),
    );
    replaceChildren(
      this.body,
      totals,
      h('section', { class: 'usage-panel usage-chart-panel' }, h('h3', { text: 'Per day, by model' }), this.chart.element),
      h('div', { class: 'usage-columns' }, shares('By model', byModel.groups, byModel.totals, (k) => k, 'usage-model-share'), shares('By project', byProject.groups, byProject.totals, shortPath, 'usage-project-share')),
      h('section', { class: 'usage-panel' }, h('h3', { text: 'Most expensive conversations' }), top.length ? h('ol', { class: 'usage-top' }, ...top) : h('p', { class: 'usage-empty', text: 'No conversations in this period.' })),
      h('section', { class: 'usage-panel' }, table(byDay)),
      h('p', { class: 'usage-footnote', text: `Estimates from per-model prices per million tokens (table ${byDay.priceTableVersion}); days in ${timeZone()}.` }),
    );
    this.chart.draw(byDay, this.chartDays(byDay), this.metric);
  }
}

export function usageView(): ViewDefinition {
  return { name: VIEW, title: 'Usage', icon: 'usage', create: () => new UsageView() };
}
