// The terminals page for keyboards and eyes: landmarks, a way out of the
// terminal and between tabs by keyboard, small text of at least 4.5:1
// contrast in both schemes, session statuses shown whole, ended sessions
// that can be dismissed, no live dots while the list is not connected, and
// the notice of a Claude session that fell back to a shell. A real gateway
// and broker, Debian's Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  activeSessionId,
  createSession,
  launchBrowser,
  login,
  newContext,
  run,
  startGateway,
  startProxy,
  type Gateway,
  type NetworkProxy,
} from './harness';

const TEST = { timeout: 120_000 };

/** WCAG contrast of every element matching `selector` against the background it is drawn on. */
function contrasts(page: Page, selector: string): Promise<{ text: string; ratio: number }[]> {
  return page.evaluate((selector) => {
    const rgb = (color: string): [number, number, number, number] => {
      const canvas = document.createElement('canvas').getContext('2d')!;
      canvas.fillStyle = color;
      canvas.fillRect(0, 0, 1, 1);
      const [r, g, b, a] = canvas.getImageData(0, 0, 1, 1).data;
      return [r!, g!, b!, a! / 255];
    };
    const luminance = ([r, g, b]: number[]) => {
      const f = (c: number) => (c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    /** The opaque colour behind an element: its ancestors' backgrounds blended from the page up. */
    const background = (element: Element): number[] => {
      const layers: number[][] = [];
      for (let node: Element | null = element; node; node = node.parentElement) {
        const color = rgb(getComputedStyle(node).backgroundColor);
        if (color[3] > 0) layers.push(color);
        if (color[3] >= 1) break;
      }
      let result = [255, 255, 255];
      for (const [r, g, b, a] of layers.reverse()) result = [r! * a! + result[0]! * (1 - a!), g! * a! + result[1]! * (1 - a!), b! * a! + result[2]! * (1 - a!)];
      return result;
    };
    return [...document.querySelectorAll(selector)]
      .filter((element) => element.getClientRects().length > 0 && (element.textContent ?? '').trim() !== '')
      .map((element) => {
        const fore = luminance(rgb(getComputedStyle(element).color));
        const back = luminance(background(element));
        const [light, dark] = fore > back ? [fore, back] : [back, fore];
        return { text: (element.textContent ?? '').trim(), ratio: (light + 0.05) / (dark + 0.05) };
      });
  }, selector);
}

describe('the terminals page by keyboard and for the eyes', { timeout: 600_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
    context = await newContext(browser);
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await login(page, gateway.url);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('landmarks: header, main, the sessions and the terminal', TEST, async () => {
    await createSession(page, 'first');
    for (const selector of ['header', 'main', 'aside[aria-label="Sessions"]', 'section[aria-label="Terminal"]']) {
      assert.equal(await page.locator(selector).count(), 1, selector);
    }
    const help = await page.getByTestId('terminal').getAttribute('aria-description');
    assert.match(help ?? '', /Ctrl\+Shift\+L leaves the terminal/);
  });

  test('the keyboard leaves the terminal and switches tabs', TEST, async () => {
    const first = await activeSessionId(page);
    const second = await createSession(page, 'second');
    const focused = () =>
      page.evaluate(() => {
        const element = document.activeElement;
        return { tab: element?.getAttribute('data-session-id') ?? null, terminal: element?.classList.contains('xterm-helper-textarea') ?? false };
      });
    assert.deepEqual(await focused(), { tab: null, terminal: true }, 'the new terminal has the focus');
    await page.keyboard.press('Control+Shift+L');
    assert.deepEqual(await focused(), { tab: second, terminal: false }, 'Ctrl+Shift+L: its tab');
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction((id) => (window as unknown as { __dispatch: { activeSessionId(): string } }).__dispatch.activeSessionId() === id, first);
    assert.deepEqual(await focused(), { tab: first, terminal: false }, 'arrows move along the tabs');
    await page.keyboard.press('Enter');
    assert.deepEqual(await focused(), { tab: null, terminal: true }, 'Enter goes back into the terminal');
    await page.keyboard.press('Alt+Shift+ArrowRight');
    await page.waitForFunction((id) => (window as unknown as { __dispatch: { activeSessionId(): string } }).__dispatch.activeSessionId() === id, second);
    await page.waitForFunction(() => document.activeElement?.classList.contains('xterm-helper-textarea'));
  });

  test('small secondary text has at least 4.5:1 contrast, dark and light', TEST, async () => {
    for (const scheme of ['dark', 'light'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.waitForTimeout(100);
      for (const selector of ['.session-times span', '.session-meta', '.toolbar-meta', '.field-label']) {
        for (const { text, ratio } of await contrasts(page, selector)) {
          assert.ok(ratio >= 4.5, `${scheme}: ${selector} "${text}" has ${ratio.toFixed(2)}:1`);
        }
      }
      const seen = await contrasts(page, '.session-times span');
      assert.ok(seen.length > 0, 'measured the session times');
    }
    await page.emulateMedia({ colorScheme: null });
  });

  test('session statuses are shown whole in the sidebar', TEST, async () => {
    const cut = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('.session-meta, .session-times span')]
        .filter((element) => element.scrollWidth > element.clientWidth + 1 || element.getBoundingClientRect().right > element.closest('.sidebar')!.getBoundingClientRect().right)
        .map((element) => element.textContent),
    );
    assert.deepEqual(cut, []);
  });

  test('an ended session can be dismissed from the list, and stays dismissed', TEST, async () => {
    const id = await createSession(page, 'short-lived');
    await run(page, 'exit');
    const item = page.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
    await page.waitForFunction((id) => document.querySelector(`[data-testid="session-item"][data-session-id="${id}"]`)?.getAttribute('data-status') === 'exited', id);
    await item.getByTestId('dismiss-session').click();
    await item.waitFor({ state: 'detached' });
    assert.ok(!(await page.evaluate(() => (window as unknown as { __dispatch: { openSessionIds(): string[] } }).__dispatch.openSessionIds())).includes(id), 'its tab closed');
    await page.reload();
    await page.locator('[data-testid="session-item"]').first().waitFor();
    assert.equal(await item.count(), 0, 'still dismissed after a reload');
    // Running sessions have no such button.
    assert.equal(await page.locator('[data-testid="session-item"][data-status="running"] [data-testid="dismiss-session"]').count(), 0);
  });

  test('no green dots while the list is not connected', TEST, async () => {
    let proxy: NetworkProxy | null = null;
    const other = await newContext(browser);
    try {
      proxy = await startProxy(gateway.url);
      const cut = await other.newPage();
      await login(cut, proxy.url);
      await cut.locator('[data-testid="session-item"][data-status="running"]').first().waitFor();
      const dot = () =>
        cut.evaluate(() => {
          const element = document.querySelector('[data-testid="session-item"][data-status="running"] .status-dot')!;
          const root = getComputedStyle(document.documentElement);
          const probe = (variable: string) => {
            const span = document.createElement('span');
            span.style.color = root.getPropertyValue(variable);
            document.body.append(span);
            const color = getComputedStyle(span).color;
            span.remove();
            return color;
          };
          return { dot: getComputedStyle(element).backgroundColor, ok: probe('--ok'), faint: probe('--faint'), label: element.getAttribute('aria-label') };
        });
      const live = await dot();
      assert.equal(live.dot, live.ok, 'green while connected');
      proxy.cut();
      await cut.waitForFunction(() => document.querySelector('.session-list')?.getAttribute('data-live') === 'false');
      const down = await dot();
      assert.equal(down.dot, down.faint, 'grey while not connected');
      assert.match(down.label ?? '', /may be out of date/);
      proxy.restore();
      await cut.waitForFunction(() => document.querySelector('.session-list')?.getAttribute('data-live') === 'true', undefined, { timeout: 30_000 });
    } finally {
      await other.close();
      await proxy?.close();
    }
  });

  test('the notice of a Claude session that fell back to a shell has no nested parentheses', TEST, async () => {
    await createSession(page, 'wanted-claude', 'claude');
    const toast = page.locator('.toast').filter({ hasText: 'Claude Code is not available' });
    await toast.waitFor();
    const text = (await toast.textContent()) ?? '';
    assert.doesNotMatch(text, /\([^)]*\(/, text);
    assert.match(text, /A shell runs instead\.$/);
  });

  test('no script errors', TEST, () => {
    assert.deepEqual(errors, []);
  });
});
