// End-to-end tests of the conversations view: a real gateway and broker
// reading a Claude Code home written here, Debian's Chromium driven by
// playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureArtifacts, launchBrowser, login, newContext, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };
const PROJECT = '/home/alice/demo-app';
const FIRST = '7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01';
const SECOND = '0a1b2c3d-0000-4000-8000-00000000beef';

let clock = Date.parse('2025-11-20T10:00:00.000Z');
function record(session: string, type: string, fields: Record<string, unknown>): string {
  clock += 1500;
  return JSON.stringify({
    parentUuid: null,
    isSidechain: false,
    cwd: PROJECT,
    sessionId: session,
    version: '2.1.39',
    gitBranch: 'main',
    type,
    uuid: `u${clock}`,
    timestamp: new Date(clock).toISOString(),
    ...fields,
  });
}

function assistant(session: string, id: string, block: unknown): string {
  const usage = { input_tokens: 3, cache_creation_input_tokens: 1200, cache_read_input_tokens: 11442, output_tokens: 9 };
  return record(session, 'assistant', {
    message: { model: 'claude-sonnet-4-5-20250929', id, type: 'message', role: 'assistant', content: [block], usage },
    requestId: `req_${id}`,
  });
}

/** Writes a small Claude Code home: two conversations, one with a failing tool call. */
function writeHome(root: string): string {
  const dir = join(root, 'projects', '-home-alice-demo-app');
  mkdirSync(dir, { recursive: true });
  const first = [
    JSON.stringify({ type: 'summary', summary: 'Fix failing date util test', leafUuid: 'x' }),
    record(FIRST, 'user', { message: { role: 'user', content: 'The formatDate test fails, please fix it' } }),
    assistant(FIRST, 'msg_01A', { type: 'thinking', thinking: 'Run the test first.', signature: 'Eq' }),
    assistant(FIRST, 'msg_01A', { type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'npm test -- date', description: 'Run date tests' } }),
    record(FIRST, 'user', {
      message: { role: 'user', content: [{ tool_use_id: 'toolu_1', type: 'tool_result', content: 'FAIL src/date.test.js <img src=x onerror=alert(1)>', is_error: true }] },
    }),
    assistant(FIRST, 'msg_01B', { type: 'text', text: 'The test fails because of a **timezone** offset.\n\n<script>window.__pwned = 1</script>' }),
  ];
  writeFileSync(join(dir, `${FIRST}.jsonl`), first.join('\n') + '\n');
  const second = [record(SECOND, 'user', { message: { role: 'user', content: 'Add a dark mode toggle' } }), assistant(SECOND, 'msg_02A', { type: 'text', text: 'Done.' })];
  writeFileSync(join(dir, `${SECOND}.jsonl`), second.join('\n') + '\n');
  return join(dir, `${FIRST}.jsonl`);
}

describe('conversations view', { timeout: 600_000 }, () => {
  let home: string;
  let transcript: string;
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'dispatch-claude-home-'));
    transcript = writeHome(home);
    gateway = await startGateway({ env: { CLAUDE_HOME: home } });
    browser = await launchBrowser();
    context = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await login(page, gateway.url);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  test('the list groups conversations by project and filters them', TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations`);
    const items = page.getByTestId('conversation-item');
    await items.first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 2);
    assert.match((await page.locator('.conv-group-title').first().textContent()) ?? '', /alice\/demo-app/);
    await page.getByTestId('conversation-search').fill('dark mode');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 1);
    assert.match((await items.first().textContent()) ?? '', /dark mode toggle/);
    await page.getByTestId('conversation-search').fill('');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 2);
  });

  test('opening a conversation and expanding a tool call shows its input and error result', TEST, async () => {
    await page.getByTestId('conversation-item').filter({ hasText: 'Fix failing date util test' }).click();
    const messages = page.getByTestId('message');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="message"]').length === 3);
    const call = page.getByTestId('tool-call');
    assert.equal(await call.count(), 1);
    assert.match((await call.locator('summary').textContent()) ?? '', /Bash.*Run date tests.*error/);
    assert.equal(await call.evaluate((d) => (d as HTMLDetailsElement).open), false);
    await call.locator('summary').click();
    await page.getByTestId('tool-result').waitFor({ state: 'visible' });
    assert.equal(await call.evaluate((d) => (d as HTMLDetailsElement).open), true);
    assert.match((await call.locator('.tool-input').textContent()) ?? '', /npm test -- date/);
    assert.match((await page.getByTestId('tool-result').textContent()) ?? '', /FAIL src\/date\.test\.js <img src=x/);
    // Thinking stays collapsed; markdown is rendered, scripts and markup from the transcript are not.
    assert.equal(await page.locator('details.thinking').evaluate((d) => (d as HTMLDetailsElement).open), false);
    assert.equal(await messages.nth(2).locator('strong').textContent(), 'timezone');
    assert.equal(await page.locator('.thread script').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.screenshot({ path: join(ensureArtifacts(), 'conversation-phone.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });

  test('an appended message appears live', TEST, async () => {
    appendFileSync(transcript, record(FIRST, 'user', { message: { role: 'user', content: 'Thanks, that works now' } }) + '\n');
    await page.getByTestId('message').filter({ hasText: 'Thanks, that works now' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.getByTestId('message').count(), 4);
  });

  test('find in the conversation moves between matches', TEST, async () => {
    await page.locator('.find-input').fill('test');
    await page.getByTestId('find-next').click();
    await page.locator('.message.found').waitFor();
    const first = await page.locator('.message.found').getAttribute('data-index');
    await page.getByTestId('find-next').click();
    await page.waitForFunction((previous) => document.querySelector('.message.found')?.getAttribute('data-index') !== previous, first);
    assert.match((await page.locator('.find-count').textContent()) ?? '', /2 \/ \d/);
  });
});
