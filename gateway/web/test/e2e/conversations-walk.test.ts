// The conversations view walked as a new user would: a full-text search
// entered at once keeps its results, an empty list says why, the reading pane
// without a conversation offers nothing to do, "Resume in a new session" says
// what went wrong (a folder gone, claude missing), and Markdown shows
// blockquotes and table borders, never a dead link and never loads an image.
// A real gateway and broker reading a Claude Code home written here, Debian's
// Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureArtifacts, launchBrowser, login, newContext, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };
/** A folder that does not exist (any more). */
const GONE = '/home/alice/removed-project';
const RICH = '5e1f0c2a-7d3b-4c9e-8a6f-0b1c2d3e4f50';
const MARKDOWN = [
  '> quoted advice',
  '',
  '| tool | runs |',
  '| --- | --- |',
  '| bash | 3 |',
  '',
  '[click me](javascript:alert(1)) and ![diagram](https://example.com/diagram.png)',
  '',
  '<img src="https://example.com/raw.png" onerror="window.__pwned = 1">',
].join('\n');

function writeHome(root: string): void {
  const dir = join(root, 'projects', '-home-alice-removed-project');
  mkdirSync(dir, { recursive: true });
  let at = Date.parse('2025-11-20T10:00:00.000Z');
  const lines = [JSON.stringify({ type: 'summary', summary: 'Tidy the build scripts', leafUuid: 'x' })];
  const usage = { input_tokens: 1, output_tokens: 1 };
  for (let i = 0; i < 12; i += 1) {
    at += 1000;
    const base = { parentUuid: null, isSidechain: false, cwd: GONE, sessionId: RICH, version: '2.1.39', uuid: `rich${i}`, timestamp: new Date(at).toISOString() };
    const text = i === 11 ? MARKDOWN : `zebra crossing number ${i}`;
    lines.push(
      JSON.stringify(
        i % 2 === 0
          ? { ...base, type: 'user', message: { role: 'user', content: text } }
          : { ...base, type: 'assistant', message: { model: 'claude-sonnet-4-5-20250929', id: `msg_${i}`, role: 'assistant', content: [{ type: 'text', text }], usage } },
      ),
    );
  }
  writeFileSync(join(dir, `${RICH}.jsonl`), lines.join('\n') + '\n');
}

describe('conversations walked through', { timeout: 600_000 }, () => {
  let home: string;
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'dispatch-claude-home-'));
    writeHome(home);
    // A stand-in `claude` that only waits, removed for the "claude missing" case.
    mkdirSync(join(home, 'bin'));
    writeFileSync(join(home, 'bin', 'claude'), '#!/bin/sh\nexec sleep 1000\n');
    chmodSync(join(home, 'bin', 'claude'), 0o755);
    gateway = await startGateway({ env: { CLAUDE_HOME: home, PATH: `${join(home, 'bin')}:${process.env.PATH}` } });
    browser = await launchBrowser();
    context = await newContext(browser);
    await context.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
      document.addEventListener('securitypolicyviolation', (event) => seen.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}:${event.columnNumber} ${event.sample}`));
    });
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await login(page, gateway.url);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  test('the reading pane without a conversation offers nothing to do', TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations`);
    await page.getByTestId('conversation-item').first().waitFor();
    await page.getByTestId('thread-empty').waitFor({ state: 'visible' });
    assert.equal(await page.getByTestId('resume-conversation').isVisible(), false);
    assert.equal(await page.getByRole('link', { name: 'Export' }).isVisible(), false);
    await page.screenshot({ path: join(ensureArtifacts(), 'conversations-empty-pane.png') });
  });

  test('Enter right after typing keeps the message results; the list says nothing matched', TEST, async () => {
    const search = page.getByTestId('conversation-search');
    await search.fill('zebra');
    await search.press('Enter');
    await page.locator('.conv-hits-head').filter({ hasText: /\d+ matching messages/ }).waitFor();
    // Past the title filter's delay: the results stay.
    await page.waitForTimeout(800);
    assert.match((await page.locator('.conv-hits-head').textContent()) ?? '', /^11 matching messages$/);
    assert.ok(await page.locator('.conv-hits').isVisible(), 'the results are shown');
    assert.equal(await page.locator('.conv-more').textContent(), 'No conversation title or folder matches “zebra”.');
    await search.fill('');
  });

  test('Markdown: blockquotes and table borders; no dead link; no image loaded', TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations/${RICH}`);
    await page.locator('.markdown blockquote').waitFor();
    const styles = await page.evaluate(() => {
      const quote = getComputedStyle(document.querySelector('.markdown blockquote')!);
      const cell = getComputedStyle(document.querySelector('.markdown td')!);
      return { quote: quote.borderLeftWidth, quoteStyle: quote.borderLeftStyle, cell: cell.borderTopWidth, cellStyle: cell.borderTopStyle };
    });
    assert.deepEqual(styles, { quote: '3px', quoteStyle: 'solid', cell: '1px', cellStyle: 'solid' });
    const markdown = page.locator('.markdown').filter({ hasText: 'click me' });
    assert.equal(await markdown.locator('a').count(), 0, 'the javascript: link is plain text');
    assert.match((await markdown.textContent()) ?? '', /click me and \[image: diagram\]/);
    assert.equal(await page.locator('.markdown img').count(), 0, 'no image in Markdown');
    await page.waitForTimeout(300);
    const violations = await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);
    assert.deepEqual(violations, [], 'no CSP violation');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.screenshot({ path: join(ensureArtifacts(), 'conversations-markdown.png') });
  });

  test("resume says when the conversation's folder is gone", TEST, async () => {
    await page.goto(`${gateway.url}/#/conversations/${RICH}`);
    await page.getByTestId('resume-conversation').click();
    await page.locator('.toast').filter({ hasText: `The conversation's folder ${GONE} no longer exists` }).waitFor();
    await page.waitForFunction(() => location.hash.startsWith('#/terminals/'));
  });

  test('resume says when claude is missing', TEST, async () => {
    rmSync(join(home, 'bin', 'claude'));
    await page.goto(`${gateway.url}/#/conversations/${RICH}`);
    await page.getByTestId('resume-conversation').click();
    await page.locator('.toast.error').filter({ hasText: 'Not resumed: Claude Code is not available' }).waitFor();
    assert.deepEqual(errors, []);
  });
});
