// End-to-end tests of the usage view: a real gateway and broker (with a
// PRICES_FILE) reading a Claude Code home written here, Debian's Chromium
// at desktop and phone sizes. The table must show the API's figures, the
// chart must be drawn, and the totals must equal the sums written here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureArtifacts, launchBrowser, login, newContext, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };
const MODELS = ['claude-sonnet-4-5-20250929', 'claude-opus-4-6', 'claude-nonesuch-9'];
const PROJECTS = ['/home/alice/shop', '/srv/tools'];
const HOUR = 3_600_000;

interface Written {
  tokens: number;
  conversations: string[];
}

/** Three conversations over the last three days, one with a subagent, responses in two lines, a damaged line. */
function writeHome(root: string): Written {
  const written: Written = { tokens: 0, conversations: [] };
  let serial = 0;
  const now = Date.now();
  for (let c = 0; c < 3; c++) {
    const project = PROJECTS[c % PROJECTS.length];
    const id = `00000000-0000-4000-8000-0000000000c${c}`;
    const dir = join(root, 'projects', project.replace(/[/.]/g, '-'));
    mkdirSync(join(dir, id, 'subagents'), { recursive: true });
    const line = (session: string, type: string, at: number, fields: Record<string, unknown>, agent?: string): string =>
      JSON.stringify({ parentUuid: null, isSidechain: !!agent, agentId: agent, cwd: project, sessionId: session, type, uuid: `u${++serial}`, timestamp: new Date(at).toISOString(), ...fields });
    const response = (at: number, model: string, n: number, agent?: string): string[] => {
      const usage = { input_tokens: 10 * n, output_tokens: 100 * n, cache_creation_input_tokens: 1000 * n, cache_read_input_tokens: 5000 * n };
      written.tokens += 6110 * n;
      const message = (part: string) => ({ model, id: `msg_${c}_${n}_${agent ?? 'm'}`, role: 'assistant', content: [{ type: 'text', text: part }], usage });
      return [line(id, 'assistant', at, { message: message('one') }, agent), line(id, 'assistant', at + 500, { message: message('two') }, agent)];
    };
    const start = now - (c + 1) * 20 * HOUR;
    const main = [
      line(id, 'user', start, { message: { role: 'user', content: `Usage task ${c}` } }),
      ...response(start + 1000, MODELS[c], c + 1),
      '{"type":"assistant","message":{"usage":{"input_tokens":99999',
      ...response(start + HOUR, MODELS[(c + 1) % 2], c + 2),
    ];
    writeFileSync(join(dir, `${id}.jsonl`), main.join('\n') + '\n');
    if (c === 0) {
      const sub = [line(id, 'user', start, { message: { role: 'user', content: 'Search' } }, 'a1'), ...response(start + 2000, MODELS[0], 7, 'a1')];
      writeFileSync(join(dir, id, 'subagents', 'agent-a1.jsonl'), sub.join('\n') + '\n');
    }
    written.conversations.push(id);
  }
  return written;
}

const LIVE = '00000000-0000-4000-8000-00000000c0de';

/** An assistant line of the live conversation (written 30 days ago, outside the 7-day period). */
function liveResponse(folder: string, n: number, context: { input: number; write: number; read: number }): string {
  const usage = { input_tokens: context.input, output_tokens: 10, cache_creation_input_tokens: context.write, cache_read_input_tokens: context.read };
  const at = new Date(Date.now() - 30 * 24 * HOUR + n * 1000).toISOString();
  const message = { model: 'claude-opus-4-6', id: `msg_live_${n}`, role: 'assistant', content: [{ type: 'text', text: 'ok' }], usage };
  return JSON.stringify({ type: 'assistant', cwd: folder, sessionId: LIVE, uuid: `live${n}`, timestamp: at, message }) + '\n';
}

/** A conversation in a real folder, for a claude session started there; and a stand-in `claude` that waits. */
function writeLive(root: string): { folder: string; transcript: string } {
  const folder = join(root, 'work', 'live-project');
  mkdirSync(folder, { recursive: true });
  const dir = join(root, 'projects', folder.replace(/[/.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  const transcript = join(dir, `${LIVE}.jsonl`);
  writeFileSync(transcript, liveResponse(folder, 1, { input: 5, write: 2000, read: 40_000 }));
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin', 'claude'), '#!/bin/sh\nexec sleep 1000\n');
  chmodSync(join(root, 'bin', 'claude'), 0o755);
  return { folder, transcript };
}

interface Row {
  key: string;
  model: string;
  cost: string;
  tokens: string;
  cells: string[];
}

async function tableRows(page: Page): Promise<Row[]> {
  return page.$$eval('[data-testid="usage-row"], [data-testid="usage-total-row"]', (rows) =>
    rows.map((r) => {
      const el = r as HTMLElement;
      return { key: el.dataset.key ?? '', model: el.dataset.model ?? '', cost: el.dataset.cost ?? '', tokens: el.dataset.tokens ?? '', cells: [...el.children].map((c) => c.textContent ?? '') };
    }),
  );
}

interface Tokens {
  input: number;
  output: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  total: number;
}
interface Report {
  groups: { key: string; costUsd: number; tokens: Tokens; models: { model: string; costUsd: number | null; tokens: Tokens }[] }[];
  totals: { costUsd: number; tokens: Tokens };
  priceTableVersion: string;
  unpricedModels: string[];
}

/** The API's report for the query the view used (its CSV link). */
async function apiReport(page: Page): Promise<Report> {
  const href = await page.getByTestId('usage-csv').getAttribute('href');
  assert.ok(href?.startsWith('/api/usage/export.csv?'));
  const url = (href ?? '').replace('/api/usage/export.csv', '/api/usage');
  return page.evaluate(async (u) => (await fetch(u, { credentials: 'same-origin' })).json(), url);
}

function expectedRows(report: Report): Omit<Row, 'cells'>[] {
  const rows = report.groups.flatMap((g) => g.models.map((m) => ({ key: g.key, model: m.model, cost: m.costUsd === null ? '' : String(m.costUsd), tokens: String(m.tokens.total) })));
  return [...rows, { key: 'Total', model: '', cost: String(report.totals.costUsd), tokens: String(report.totals.tokens.total) }];
}

async function checkView(page: Page, written: Written, shot: string): Promise<void> {
  await page.goto(`${page.url().split('#')[0]}#/usage`);
  await page.getByTestId('usage-period-7').click();
  await page.waitForSelector('[data-testid="usage-view"][data-state="ready"]');
  const report = await apiReport(page);
  assert.equal(report.priceTableVersion, 'anthropic-2026-12+e2e-1');
  assert.deepEqual(report.unpricedModels, ['claude-nonesuch-9']);
  assert.equal(report.totals.tokens.total, written.tokens, 'the API counts each response once, subagents included, damage skipped');
  const rows = await tableRows(page);
  assert.deepEqual(
    rows.map(({ cells: _cells, ...r }) => r),
    expectedRows(report),
  );
  const models = report.groups.flatMap((g) => g.models);
  for (const [row, m] of rows.slice(0, -1).map((r, i) => [r, models[i]] as const)) {
    assert.equal(row.cells[7], m.tokens.total.toLocaleString('en-US'));
    assert.equal(row.cells[8], m.costUsd === null ? 'no price' : `$${m.costUsd.toFixed(m.costUsd < 1 ? 4 : 2)}`);
  }
  const chart = page.getByTestId('usage-chart');
  const box = await chart.boundingBox();
  assert.ok(box && box.width > 200 && box.height > 150, `chart drawn: ${JSON.stringify(box)}`);
  assert.equal(await page.locator('.usage-chart').getAttribute('data-series'), String(new Set(models.map((m) => m.model)).size));
  const painted = await chart.evaluate((c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
    let opaque = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) opaque++;
    return opaque;
  });
  assert.ok(painted > 1000, 'the chart has pixels');
  await page.getByTestId('usage-metric-tokens').click();
  assert.equal(await page.locator('.usage-chart').getAttribute('data-metric'), 'tokens');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling of the page (${overflow}px)`);
  assert.equal(await page.getByTestId('usage-model-share').count(), 3);
  assert.equal(await page.getByTestId('usage-project-share').count(), 2);
  await page.screenshot({ path: join(ensureArtifacts(), shot), fullPage: true });
  const top = page.getByTestId('usage-top-link').first();
  const href = await top.getAttribute('href');
  assert.ok(written.conversations.some((id) => href === `#/conversations/${id}`), `top link ${href}`);
  await top.click();
  await page.waitForFunction(() => location.hash.startsWith('#/conversations/'));
  await page.getByTestId('conversation-cost').waitFor();
  assert.match((await page.getByTestId('conversation-cost').textContent()) ?? '', /^~\$\d+\.\d+/);
}

describe('usage view', () => {
  let home: string;
  let written: Written;
  let gateway: Gateway;
  let browser: Browser;
  let live: { folder: string; transcript: string };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'dispatch-usage-home-'));
    written = writeHome(home);
    live = writeLive(home);
    const prices = join(home, 'prices.json');
    writeFileSync(prices, JSON.stringify({ version: 'e2e-1', models: { 'claude-opus-4-6': { input: 4, output: 20, cacheWrite5m: 5, cacheWrite1h: 8, cacheRead: 0.4 } } }));
    gateway = await startGateway({ env: { CLAUDE_HOME: home, PRICES_FILE: prices, PATH: `${join(home, 'bin')}:${process.env.PATH}` } });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  test('desktop, dark theme: the nav leads to the chart and a table equal to the API', TEST, async () => {
    const context = await newContext(browser, { colorScheme: 'dark' });
    const page = await context.newPage();
    await login(page, gateway.url);
    // Errors from here on (before login the page asks once and gets a 401).
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.locator('a.nav-link[data-view="usage"]').click();
    await page.waitForFunction(() => location.hash === '#/usage');
    const surface = await page.locator('.usage-panel').first().evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(surface, 'rgb(20, 23, 29)', 'dark surface');
    await checkView(page, written, 'usage-desktop-dark.png');
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('phone, light theme: the same figures fit the width', TEST, async () => {
    const context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: 'light' });
    const page = await context.newPage();
    await login(page, gateway.url);
    await page.goto(`${gateway.url}/#/usage`);
    await checkView(page, written, 'usage-phone.png');
    await context.close();
  });

  test("a claude session's toolbar shows its folder's context use, updated as the transcript grows", TEST, async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await login(page, gateway.url);
    const id = await page.evaluate(async (cwd) => {
      const response = await fetch('/api/sessions', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ mode: 'claude', name: 'context', cwd }),
      });
      return ((await response.json()) as { id: string }).id;
    }, live.folder);
    await page.goto(`${gateway.url}/#/terminals/${encodeURIComponent(id)}`);
    const gauge = page.getByTestId('session-context');
    await gauge.waitFor();
    await page.waitForFunction(() => document.querySelector<HTMLElement>('[data-testid="session-context"]')?.dataset.tokens === '42005');
    assert.equal(await gauge.getAttribute('data-window'), '200000');
    assert.match((await gauge.textContent()) ?? '', /^21% of 200K$/);
    appendFileSync(live.transcript, liveResponse(live.folder, 2, { input: 7, write: 3000, read: 150_000 }));
    await page.waitForFunction(() => document.querySelector<HTMLElement>('[data-testid="session-context"]')?.dataset.tokens === '153007', undefined, { timeout: 10_000 });
    assert.match((await gauge.textContent()) ?? '', /^77% of 200K$/);
    await page.screenshot({ path: join(ensureArtifacts(), 'usage-session-context.png') });
    await context.close();
  });
});
