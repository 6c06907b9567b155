// End-to-end tests of the conversations view: a real gateway and broker
// reading a Claude Code home written here, Debian's Chromium driven by
// playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureArtifacts, launchBrowser, login, newContext, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };
const PROJECT = '/home/alice/demo-app';
const FIRST = '7f3c2a9e-1b4d-4e8a-9c2f-5d6e7a8b9c01';
const SECOND = '0a1b2c3d-0000-4000-8000-00000000beef';
const LONG = 'c0ffee00-0000-4000-8000-0000000000aa';
/** Messages of the long conversation (the view loads 40 at a time). */
const LONG_MESSAGES = 130;
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

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
    record(FIRST, 'user', {
      message: {
        role: 'user',
        content: [
          { type: 'text', text: 'The formatDate test fails, please fix it' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        ],
      },
    }),
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

/** A long conversation, a day older, in `cwd` (a folder that exists). */
function writeLongConversation(root: string, cwd: string): void {
  const dir = join(root, 'projects', cwd.replace(/[/.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  let at = Date.parse('2025-11-19T08:00:00.000Z');
  const lines = [];
  for (let i = 0; i < LONG_MESSAGES; i += 1) {
    at += 1000;
    const base = { parentUuid: null, isSidechain: false, cwd, sessionId: LONG, version: '2.1.39', uuid: `long${i}`, timestamp: new Date(at).toISOString() };
    const usage = { input_tokens: 1, output_tokens: 1 };
    lines.push(
      JSON.stringify(
        i % 2 === 0
          ? { ...base, type: 'user', message: { role: 'user', content: i === 0 ? 'Walk through the long plan' : `Question number ${i}` } }
          : { ...base, type: 'assistant', message: { model: 'claude-sonnet-4-5-20250929', id: `msg_long_${i}`, role: 'assistant', content: [{ type: 'text', text: `Answer number ${i}` }], usage } },
      ),
    );
  }
  writeFileSync(join(dir, `${LONG}.jsonl`), lines.join('\n') + '\n');
}

/** A stand-in `claude` that records its working directory and arguments. */
function writeStandInClaude(bin: string, marker: string): void {
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'claude'), `#!/bin/sh\nprintf '%s\\n%s\\n' "$PWD" "$*" > '${marker}'\nexec sleep 1000\n`);
  chmodSync(join(bin, 'claude'), 0o755);
}

function messageIndexes(page: Page): Promise<number[]> {
  return page.$$eval('[data-testid="message"]', (elements) => elements.map((e) => Number(e.getAttribute('data-index'))));
}

/** Scrolls the thread to one end, again and again, until message `index` is loaded. */
async function scrollUntilLoaded(page: Page, end: 'top' | 'bottom', index: number): Promise<void> {
  await page.waitForFunction(
    ([end, index]) => {
      const scroller = document.querySelector<HTMLElement>('.thread-scroll');
      if (!scroller) return false;
      scroller.scrollTop = end === 'top' ? 0 : scroller.scrollHeight;
      return document.querySelector(`[data-testid="message"][data-index="${index}"]`) !== null;
    },
    [end, index] as const,
    { timeout: 30_000, polling: 250 },
  );
}

describe('conversations view', { timeout: 600_000 }, () => {
  let home: string;
  let project: string;
  let marker: string;
  let transcript: string;
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'dispatch-claude-home-'));
    transcript = writeHome(home);
    project = mkdtempSync(join(tmpdir(), 'dispatch-e2e-project-'));
    writeLongConversation(home, project);
    marker = join(home, 'claude-ran');
    writeStandInClaude(join(home, 'bin'), marker);
    gateway = await startGateway({ env: { CLAUDE_HOME: home, PATH: `${join(home, 'bin')}:${process.env.PATH}` } });
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
    rmSync(project, { recursive: true, force: true });
  });

  test('the list groups conversations by project and filters them', TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations`);
    const items = page.getByTestId('conversation-item');
    await items.first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 3);
    const groups = page.locator('.conv-group');
    assert.equal(await groups.count(), 2);
    assert.match((await page.locator('.conv-group-title').first().textContent()) ?? '', /alice\/demo-app/);
    assert.equal(await groups.first().getByTestId('conversation-item').count(), 2);
    assert.match((await groups.nth(1).textContent()) ?? '', /Walk through the long plan/);
    await page.getByTestId('conversation-search').fill('dark mode');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 1);
    assert.match((await items.first().textContent()) ?? '', /dark mode toggle/);
    await page.getByTestId('conversation-search').fill('');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 3);
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
    // The prompt's image is a thumbnail that decodes.
    const thumb = messages.first().locator('img.conv-thumb');
    assert.equal(await thumb.count(), 1);
    assert.match((await thumb.getAttribute('src')) ?? '', /^data:image\/png;base64,/);
    await page.waitForFunction(() => (document.querySelector('img.conv-thumb') as HTMLImageElement | null)?.naturalWidth === 1);
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
    await page.getByTestId('find-previous').click();
    await page.waitForFunction((previous) => document.querySelector('.message.found')?.getAttribute('data-index') === previous, first);
    assert.match((await page.locator('.find-count').textContent()) ?? '', /1 \/ \d/);
  });

  test('a conversation loads older and newer pages while scrolling both ways', TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations/${LONG}/64`);
    await page.locator('.message.found[data-index="64"]').waitFor();
    const opened = await messageIndexes(page);
    assert.ok(opened.length < LONG_MESSAGES, `opened with ${opened.length} messages`);
    await scrollUntilLoaded(page, 'bottom', LONG_MESSAGES - 1);
    await scrollUntilLoaded(page, 'top', 0);
    assert.match((await page.locator('.thread-edge').first().textContent()) ?? '', /Start of the conversation/);
    // Every message once, in order.
    assert.deepEqual(await messageIndexes(page), [...Array(LONG_MESSAGES).keys()]);
  });

  test("resume starts claude in the conversation's folder, and that session links back", TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations/${LONG}`);
    await page.locator(`[data-testid="message"][data-index="${LONG_MESSAGES - 1}"]`).waitFor();
    await page.getByTestId('resume-conversation').click();
    await page.waitForFunction(() => location.hash.startsWith('#/terminals/'));
    const sessionHash = await page.evaluate(() => location.hash);
    const deadline = Date.now() + 30_000;
    while (!existsSync(marker) || readFileSync(marker, 'utf8').split('\n').length < 3) {
      assert.ok(Date.now() < deadline, 'the stand-in claude never ran');
      await new Promise((r) => setTimeout(r, 100));
    }
    const [cwd, args] = readFileSync(marker, 'utf8').split('\n');
    assert.equal(cwd, project);
    // The resume, then the broker's own settings file (its Notification hook).
    assert.match(args, new RegExp(`^--resume ${LONG} --settings \\S+/\\.dispatch/claude-settings\\.json$`));
    // The session's toolbar links to its folder's conversations: a label
    // beside the toolbar details on wide screens, an icon on a small phone
    // (where the details are hidden).
    const desktop = await (await newContext(browser)).newPage();
    await login(desktop, gateway.url);
    await desktop.goto(`${gateway.url}/${sessionHash}`);
    await desktop.getByTestId('session-conversations').click({ timeout: 30_000 });
    await desktop.waitForFunction(() => location.hash.startsWith('#/conversations/project/'));
    await desktop.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 1);
    assert.equal(await desktop.getByTestId('conversation-item').getAttribute('data-id'), LONG);
    assert.ok(((await desktop.locator('.conv-scope').textContent()) ?? '').includes(project));
    await desktop.context().close();

    const phone = await (await newContext(browser, { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true })).newPage();
    await login(phone, gateway.url);
    await phone.goto(`${gateway.url}/${sessionHash}`);
    const link = phone.getByTestId('session-conversations');
    await link.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await phone.locator('.toolbar-info').isVisible(), false, 'the toolbar details are hidden on a phone');
    const box = await link.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 375 && box.y >= 0 && box.y + box.height <= 667, `link inside the screen: ${JSON.stringify(box)}`);
    assert.ok(box.width >= 32 && box.height >= 32, `a thumb-sized target: ${JSON.stringify(box)}`);
    await phone.screenshot({ path: join(ensureArtifacts(), 'session-conversations-phone.png') });
    await link.tap();
    await phone.waitForFunction(() => location.hash.startsWith('#/conversations/project/'));
    await phone.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 1);
    assert.equal(await phone.getByTestId('conversation-item').getAttribute('data-id'), LONG);
    await phone.context().close();
  });

  test('a conversation written to just now is marked active', TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="conversation-item"]').length === 3);
    appendFileSync(transcript, JSON.stringify({ type: 'user', cwd: PROJECT, sessionId: FIRST, uuid: 'now', timestamp: new Date().toISOString(), message: { role: 'user', content: 'Still there?' } }) + '\n');
    await page.locator(`[data-testid="conversation-item"][data-id="${FIRST}"].status-active`).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('[data-testid="conversation-item"].status-active').count(), 1);
    assert.equal(await page.locator('[data-testid="conversation-item"].status-idle').count(), 2);
    assert.deepEqual(errors, []);
  });
});
