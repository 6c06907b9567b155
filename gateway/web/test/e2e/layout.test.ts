// The page at each layout (desktop, phone upright, phone on its side): it
// loads without a console error, logged out or in (the login check is a
// public question, not a refused request); every header item (and the
// session list's head) is whole on screen; and a session the broker lost (the broker killed, the gateway
// starting a new one) leaves the list instead of lingering as a ghost with
// its viewer. A real gateway and broker, Debian's Chromium driven by
// playwright-core. Screenshots in artifacts/web/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { createSession, ensureArtifacts, launchBrowser, login, newContext, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };

const LAYOUTS: { name: string; options: BrowserContextOptions }[] = [
  { name: 'desktop', options: { viewport: { width: 1280, height: 800 } } },
  { name: 'phone', options: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } },
  { name: 'phone-landscape', options: { viewport: { width: 844, height: 390 }, isMobile: true, hasTouch: true } },
];

/** Console errors and uncaught exceptions of `page`, as they come. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  return errors;
}

/** Header items whose box is cut by the header, the page or the navigation's scroll box. */
function clippedHeaderItems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const header = document.querySelector('.app-header')!;
    const nav = header.querySelector<HTMLElement>('.nav');
    const bounds = header.getBoundingClientRect();
    const width = document.documentElement.clientWidth;
    const items = [...header.querySelectorAll<HTMLElement>('.brand, .nav-link, [data-testid="connection-status"], [data-testid="logout"]')];
    const clipped: string[] = [];
    for (const item of items) {
      if (item.hidden || item.getClientRects().length === 0) continue;
      const box = item.getBoundingClientRect();
      const name = item.getAttribute('data-view') ?? item.getAttribute('data-testid') ?? item.className;
      const inside = (outer: DOMRect) => box.left >= outer.left - 0.5 && box.right <= outer.right + 0.5;
      if (!inside(bounds) || box.left < 0 || box.right > width + 0.5) clipped.push(`${name} leaves the header`);
      else if (nav?.contains(item) && !inside(nav.getBoundingClientRect())) clipped.push(`${name} is cut by the navigation`);
      else if (box.top < bounds.top - 0.5 || box.bottom > bounds.bottom + 0.5) clipped.push(`${name} is cut vertically`);
    }
    if (nav && nav.scrollWidth > nav.clientWidth + 0.5) clipped.push(`the navigation scrolls (${nav.scrollWidth} > ${nav.clientWidth})`);
    // The session list's head, where the sidebar shows (not a closed drawer).
    const sidebar = document.querySelector<HTMLElement>('.sidebar');
    if (sidebar && getComputedStyle(sidebar).visibility === 'visible') {
      const side = sidebar.getBoundingClientRect();
      for (const item of document.querySelectorAll<HTMLElement>('.sidebar-head > *')) {
        const box = item.getBoundingClientRect();
        if (box.width > 0 && (box.left < side.left - 0.5 || box.right > side.right + 0.5)) clipped.push(`${item.tagName} of the sidebar's head is cut`);
      }
    }
    return clipped;
  });
}

describe('layouts', { timeout: 600_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;

  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  for (const layout of LAYOUTS) {
    test(`${layout.name}: no console error on load, logged out or in; the header whole`, TEST, async () => {
      const context = await newContext(browser, layout.options);
      try {
        const page = await context.newPage();
        const errors = collectErrors(page);
        await page.goto(gateway.url);
        await page.getByTestId('login-key').waitFor();
        await login(page, gateway.url);
        await page.reload();
        await page.getByTestId('new-session').waitFor({ state: 'attached' });
        await page.waitForLoadState('networkidle');
        assert.deepEqual(errors, [], 'the page logged errors while loading');

        for (const view of ['terminals', 'conversations', 'usage']) {
          await page.goto(`${gateway.url}/#/${view}`);
          await page.locator(`a.nav-link[data-view="${view}"][aria-current="page"]`).waitFor();
          assert.deepEqual(await clippedHeaderItems(page), [], `header at ${layout.name} on ${view}`);
        }
        // Every view is reachable from the header by its name.
        for (const name of ['Terminals', 'Conversations', 'Usage']) {
          assert.equal(await page.getByRole('link', { name, exact: true }).count(), 1, `a link named ${name}`);
        }
        await page.goto(`${gateway.url}/#/terminals`);
        await page.screenshot({ path: join(ensureArtifacts(), `header-${layout.name}.png`), clip: { x: 0, y: 0, ...(layout.options.viewport ?? { width: 1280, height: 800 }), height: 120 } });
        assert.deepEqual(errors, [], 'the page logged errors');
      } finally {
        await context.close();
      }
    });
  }

  test('a session the broker lost leaves the list', TEST, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'dispatch-e2e-state-'));
    const own = await startGateway({ env: { STATE_DIR: stateDir } });
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await login(page, own.url);
      const id = await createSession(page, 'lost');
      const item = page.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
      await item.locator('.session-meta', { hasText: '1 viewer' }).waitFor();

      // The broker dies with the session; the gateway starts another, which has none.
      const pid = Number(readFileSync(join(stateDir, 'broker', 'broker.pid'), 'utf8').trim());
      assert.ok(pid > 0, 'the local broker has a pid file');
      process.kill(pid, 'SIGKILL');
      await item.waitFor({ state: 'detached', timeout: 60_000 });
      await page.screenshot({ path: join(ensureArtifacts(), 'broker-lost-session.png') });
      assert.equal(await page.locator('[data-testid="session-item"]').count(), 0, 'no session is listed');
      // It does not come back from its open tab either.
      await page.waitForTimeout(1500);
      assert.equal(await item.count(), 0, 'the lost session stays out of the list');
    } finally {
      await context.close();
      await own.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
