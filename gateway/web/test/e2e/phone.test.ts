// End-to-end tests of the page on a phone (375 x 667, touch): every key of
// the key bar, sticky and locked modifiers, text fields that do not make the
// browser zoom, and a layout that follows the soft keyboard. A real gateway
// and broker, Debian's Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import {
  assertPtySize,
  createSession,
  ensureArtifacts,
  launchBrowser,
  login,
  newContext,
  run,
  startGateway,
  sttySize,
  waitForBuffer,
  waitForFittedSize,
  waitForPrompt,
  type Gateway,
  type Size,
} from './harness';

const TEST = { timeout: 120_000 };
const PHONE = { width: 375, height: 667 };

describe('dispatch on a phone', { timeout: 600_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let keybar: Locator;
  const errors: string[] = [];

  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
    context = await newContext(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
    // A stand-in for the soft keyboard: it covers the bottom of the visual
    // viewport, as phones report it, and says so with a resize event.
    await context.addInitScript(() => {
      const height = Object.getOwnPropertyDescriptor(VisualViewport.prototype, 'height');
      let covered = 0;
      Object.defineProperty(VisualViewport.prototype, 'height', {
        configurable: true,
        get(this: VisualViewport) {
          return (height?.get?.call(this) as number) - covered;
        },
      });
      (window as unknown as { __softKeyboard(px: number): void }).__softKeyboard = (px: number) => {
        covered = px;
        window.visualViewport?.dispatchEvent(new Event('resize'));
      };
    });
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await login(page, gateway.url);
    await createSession(page, 'pocket');
    keybar = page.getByTestId('keybar');
    await keybar.waitFor({ state: 'visible' });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  const key = (label: string) => keybar.locator(`[data-key="${label}"]`);

  test('every key of the key bar reaches the program', TEST, async () => {
    await run(page, 'clear; cat -vT');
    await page.waitForTimeout(300);
    for (const label of ['Esc', 'Tab', '←', '↑', '↓', '→', '|', '~', '/', '-']) await key(label).click();
    await page.keyboard.press('Enter');
    // cat -vT shows Escape as ^[ and Tab as ^I.
    await waitForBuffer(page, /^\^\[\^I\^\[\[D\^\[\[A\^\[\[B\^\[\[C\|~\/-$/m);
  });

  test('Alt and Ctrl stick for one key, or stay on when tapped twice', TEST, async () => {
    await key('Alt').click();
    assert.equal(await key('Alt').getAttribute('data-level'), 'once');
    await page.keyboard.type('x');
    assert.equal(await key('Alt').getAttribute('data-level'), 'off', 'Alt is released after one key');
    await key('Ctrl').click();
    await key('Ctrl').click();
    assert.equal(await key('Ctrl').getAttribute('data-level'), 'locked');
    assert.equal(await key('Ctrl').getAttribute('aria-pressed'), 'true');
    await page.keyboard.type('ab');
    await key('←').click();
    assert.equal(await key('Ctrl').getAttribute('data-level'), 'locked', 'a locked Ctrl stays on');
    await key('Ctrl').click();
    assert.equal(await key('Ctrl').getAttribute('data-level'), 'off');
    await page.keyboard.type('z');
    await page.keyboard.press('Enter');
    // Alt+x, Ctrl+a, Ctrl+b, Ctrl+Left, then a plain z.
    await waitForBuffer(page, /^\^\[x\^A\^B\^\[\[1;5Dz$/m);
    await key('Ctrl').click();
    await page.keyboard.type('c');
    await waitForPrompt(page);
  });

  test('text fields are large enough that focusing them does not zoom the page', TEST, async () => {
    const small = () =>
      page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('input, select, textarea')]
          .filter((field) => field.offsetParent !== null || field.classList.contains('xterm-helper-textarea'))
          .map((field) => ({ field: field.dataset.testid ?? field.className, size: parseFloat(getComputedStyle(field).fontSize) }))
          .filter(({ size }) => size < 16),
      );
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea')), true);
    assert.deepEqual(await small(), [], 'the terminal and the page');
    await page.getByTestId('sessions-toggle').click();
    await page.getByTestId('new-session').click();
    await page.getByTestId('session-name').waitFor({ state: 'visible' });
    assert.deepEqual(await small(), [], 'the new-session form');
    await page.locator('.new-session-form').getByText('Cancel').click();
    await page.getByTestId('search-toggle').click();
    assert.deepEqual(await small(), [], 'the search field');
    await page.getByTestId('search-input').press('Escape');
    await page.getByTestId('rename-session').click();
    assert.deepEqual(await small(), [], 'the rename dialog');
    await page.getByTestId('dialog-cancel').click();
    const scale = await page.evaluate(() => window.visualViewport?.scale ?? 1);
    assert.equal(scale, 1, 'the page is not zoomed');

    const fresh = await context.newPage();
    try {
      await context.clearCookies();
      await fresh.goto(gateway.url);
      await fresh.getByTestId('login-key').waitFor();
      assert.ok(parseFloat(await fresh.getByTestId('login-key').evaluate((field) => getComputedStyle(field).fontSize)) >= 16, 'the key field');
    } finally {
      await fresh.close();
      await login(page, gateway.url);
    }
  });

  test('with the soft keyboard open, the terminal shrinks above it and the PTY follows', TEST, async () => {
    const open = await waitForFittedSize(page);
    await run(page, 'clear; echo top-line');
    await page.getByTestId('terminal').click();
    await page.evaluate(() => (window as unknown as { __softKeyboard(px: number): void }).__softKeyboard(300));
    const shrunk = await page.waitForFunction(
      (open: Size) => {
        const hooks = (window as unknown as { __dispatch: { terminalSize(): Size | null; fittedSize(): Size | null } }).__dispatch;
        const size = hooks.terminalSize();
        const fitted = hooks.fittedSize();
        return size && fitted && size.rows === fitted.rows && size.cols === fitted.cols && size.rows < open.rows ? size : null;
      },
      open,
    );
    const size = (await shrunk.jsonValue()) as Size;
    assert.equal(size.cols, open.cols, 'as wide as before');
    const visibleHeight = PHONE.height - 300;
    const bar = await page.getByTestId('keybar').boundingBox();
    assert.ok(bar && bar.y + bar.height <= visibleHeight + 1, `the key bar sits above the keyboard: ${JSON.stringify(bar)}`);
    const screen = await page.locator('.pane:not([hidden]) .xterm-screen').boundingBox();
    assert.ok(screen && screen.y >= 0 && screen.y + screen.height <= bar!.y + 1, `the terminal is between the header and the key bar: ${JSON.stringify(screen)}`);
    assert.equal(await page.evaluate(() => window.scrollY), 0, 'the page did not scroll away');
    await assertPtySize(page, await sttySize(page, 'keyboard'), size, 'the PTY follows the smaller terminal');
    await page.screenshot({ path: join(ensureArtifacts(), 'phone-soft-keyboard.png') });

    await page.evaluate(() => (window as unknown as { __softKeyboard(px: number): void }).__softKeyboard(0));
    const restored = await waitForFittedSize(page);
    assert.deepEqual(restored, open, 'the terminal takes the room back');
    await assertPtySize(page, await sttySize(page, 'closed'), open, 'and so does the PTY');
  });

  test('every key of the key bar is on screen and tappable, upright, wide or in landscape, without scrolling', TEST, async () => {
    const labels = ['Esc', 'Tab', 'Ctrl', 'Alt', '←', '↑', '↓', '→', '|', '~', '/', '-', 'PgUp', 'PgDn', 'Home', 'End', 'Copy', 'Paste'];
    const layout = () =>
      page.evaluate((labels) => {
        const bar = document.querySelector<HTMLElement>('[data-testid="keybar"]')!;
        const keys = labels.map((label) => {
          const key = bar.querySelector<HTMLElement>(`[data-key="${label}"]`)!;
          const box = key.getBoundingClientRect();
          const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
          return { label, left: box.left, top: box.top, right: box.right, bottom: box.bottom, width: box.width, height: box.height, hit: key.contains(hit) };
        });
        return {
          viewport: { width: window.innerWidth, height: window.innerHeight },
          scrollWidth: bar.scrollWidth,
          clientWidth: bar.clientWidth,
          pageScrollWidth: document.documentElement.scrollWidth,
          keys,
        };
      }, labels);
    const check = async (name: string) => {
      const seen = await layout();
      const where = `${name}: ${JSON.stringify(seen)}`;
      assert.ok(seen.scrollWidth <= seen.clientWidth, `the key bar does not scroll sideways (${where})`);
      assert.ok(seen.pageScrollWidth <= seen.viewport.width, `nor does the page (${where})`);
      for (const key of seen.keys) {
        const inside = key.left >= 0 && key.top >= 0 && key.right <= seen.viewport.width && key.bottom <= seen.viewport.height;
        assert.ok(inside, `${key.label} lies within the viewport (${where})`);
        assert.ok(key.width >= 32 && key.height >= 32, `${key.label} is at least 32 px square (${where})`);
        assert.ok(key.hit, `nothing covers ${key.label} (${where})`);
      }
      return seen;
    };
    const open = await waitForFittedSize(page);
    const upright = await check('375 x 667');
    assert.ok(upright.keys.every((key) => key.height >= 36), 'upright keys are 36 px tall');
    await page.screenshot({ path: join(ensureArtifacts(), 'phone-keybar.png') });
    try {
      for (const viewport of [
        { width: 320, height: 568 },
        { width: 430, height: 932 },
        { width: 667, height: 375 },
        { width: 932, height: 430 },
      ]) {
        await page.setViewportSize(viewport);
        // The layout follows the visual viewport's resize event, which comes after the window's.
        await page.waitForFunction(
          ({ width, height }) =>
            window.innerWidth === width &&
            window.innerHeight === height &&
            document.documentElement.style.getPropertyValue('--app-height') === `${Math.round(window.visualViewport?.height ?? 0)}px`,
          viewport,
        );
        await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
        const seen = await check(`${viewport.width} x ${viewport.height}`);
        if (viewport.width > viewport.height) {
          const rows = new Set(seen.keys.map((key) => Math.round(key.top)));
          assert.equal(rows.size, 1, `in landscape the keys take one row, leaving the height to the terminal: ${JSON.stringify(seen.keys)}`);
        }
        if (viewport.width === 667) await page.screenshot({ path: join(ensureArtifacts(), 'phone-keybar-landscape.png') });
      }
    } finally {
      await page.setViewportSize(PHONE);
    }
    assert.deepEqual(await waitForFittedSize(page), open, 'back upright, the terminal fills the same area');
    await key('/').click();
    await key('-').click();
    await waitForBuffer(page, /\/-\s*$/);
    await page.keyboard.press('Control+U');
  });

  test('no script errors', TEST, () => {
    assert.deepEqual(errors, []);
  });
});
