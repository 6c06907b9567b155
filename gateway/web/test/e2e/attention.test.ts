// Sessions that need their user: a bell in a session puts a badge on its
// list item, counts it in the page title and, once the user turned
// notifications on (permission granted in the test, asked on the click and
// not at load), shows a browser Notification while the page is hidden.
// Typing in the session clears it. A real gateway and broker, Debian's
// Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createSession, launchBrowser, login, newContext, run, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };

describe('attention', () => {
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  before(async () => {
    gateway = await startGateway({ env: { NOTIFY_MIN_INTERVAL_SECS: '0' } });
    browser = await launchBrowser();
    context = await newContext(browser);
    await context.grantPermissions(['notifications'], { origin: gateway.url });
    // Records every Notification the page shows (still showing it).
    await context.addInitScript(() => {
      const shown: { title: string; tag?: string }[] = [];
      (window as unknown as { __notifications: typeof shown }).__notifications = shown;
      const Real = window.Notification;
      class Recorded extends Real {
        constructor(title: string, options?: NotificationOptions) {
          super(title, options);
          shown.push({ title, tag: options?.tag });
        }
      }
      Object.defineProperty(window, 'Notification', { value: Recorded, configurable: true });
    });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('a bell shows a badge, counts in the title and notifies a hidden page', TEST, async () => {
    await login(page, gateway.url);
    const toggle = page.getByTestId('notifications-toggle');
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false', 'off until turned on');
    await toggle.click();
    await page.waitForFunction(() => document.querySelector('[data-testid="notifications-toggle"]')?.getAttribute('aria-pressed') === 'true');
    const id = await createSession(page, 'bell-ringer');
    // The page goes to the background while the command waits.
    await run(page, "sleep 2; printf '\\a'");
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const item = page.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
    await item.getByTestId('attention-badge').waitFor();
    assert.equal(await item.getByTestId('attention-badge').getAttribute('data-reason'), 'bell');
    await page.waitForFunction(() => document.title.startsWith('(1) '));
    const shown = await page.waitForFunction(() => {
      const list = (window as unknown as { __notifications: { title: string; tag?: string }[] }).__notifications;
      return list.length > 0 ? list : null;
    });
    const notifications = (await shown.jsonValue()) as { title: string; tag?: string }[];
    assert.equal(notifications.length, 1);
    assert.equal(notifications[0]!.title, 'bell-ringer rang the bell');
    assert.equal(notifications[0]!.tag, `dispatch-${id}`);
    // Back on the page, typing in the session clears the attention.
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { value: false, configurable: true });
      Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
    });
    await run(page, 'true');
    await item.getByTestId('attention-badge').waitFor({ state: 'detached' });
    await page.waitForFunction(() => !document.title.startsWith('('));
  });
});
