// End-to-end tests of the web UI: a real gateway and broker, Debian's
// Chromium driven by playwright-core, the terminal read from its buffer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  KEY,
  activeSessionId,
  bufferText,
  createSession,
  ensureArtifacts,
  launchBrowser,
  login,
  newContext,
  run,
  startBroker,
  startGateway,
  terminalSize,
  terminalState,
  waitForBuffer,
  waitForPrompt,
  assertPtySize,
  recordedTerminalSizes,
  sttySize,
  waitForFittedSize,
  type Gateway,
  type Hooks,
  type Size,
} from './harness';

const TEST = { timeout: 120_000 };

describe('dispatch web UI', { timeout: 600_000 }, () => {
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
    page.on('console', (message) => {
      // Refused requests (the login check, a wrong key) are logged by the browser itself.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        errors.push(`console: ${message.text()}`);
      }
    });
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('the page is served under its CSP with hashed assets only', TEST, async () => {
    const response = await fetch(gateway.url + '/');
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    const html = await response.text();
    assert.doesNotMatch(html, /<script>(?!<\/script>)/, 'no inline script');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handler');
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing from another origin');
    const assets = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]);
    assert.equal(assets.length, 2, 'one script and one stylesheet');
    for (const asset of assets) {
      assert.match(asset, /-[A-Z0-9]{8}\.(js|css)$/, 'content-hashed name');
      assert.equal((await fetch(`${gateway.url}/${asset}`)).status, 200);
    }
  });

  test('a wrong key shows the error; the right key logs in', TEST, async () => {
    await page.goto(gateway.url);
    await page.getByTestId('login-key').fill('not-the-key');
    await page.getByTestId('login-submit').click();
    const error = page.getByTestId('login-error');
    await error.waitFor({ state: 'visible' });
    assert.match((await error.textContent()) ?? '', /invalid key/i);
    await page.screenshot({ path: join(ensureArtifacts(), 'login-error.png') });

    await page.getByTestId('login-key').fill(KEY);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('new-session').waitFor();
    assert.equal(await page.getByTestId('login-key').count(), 0, 'the login form is gone');
    await page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === 'connected');
  });

  test('create a session, type echo ok and read it from the terminal', TEST, async () => {
    const id = await createSession(page, 'first');
    await page.getByTestId('terminal').waitFor();
    await run(page, 'echo ok');
    await waitForBuffer(page, /^ok$/m);
    const item = page.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
    await item.waitFor();
    assert.equal(await item.getAttribute('data-status'), 'running');
    assert.match((await item.textContent()) ?? '', /first/);
    assert.match((await item.textContent()) ?? '', /shell/);
    assert.equal(await page.getByTestId('connection-status').getAttribute('data-state'), 'connected');
  });

  test('the PTY follows the viewport size (stty size)', TEST, async () => {
    const before = await waitForFittedSize(page);
    await assertPtySize(page, await sttySize(page, 'size'), before, 'the PTY has the terminal size');

    await page.setViewportSize({ width: 900, height: 560 });
    const after = await waitForFittedSize(page, before);
    await assertPtySize(page, await sttySize(page, 'viewport'), after, 'the PTY was resized');

    // A larger font: fewer columns and rows, and the PTY follows. Each click
    // fits the terminal; the size to check is the one after the second.
    await page.getByTestId('font-larger').click();
    await page.getByTestId('font-larger').click();
    const larger = await waitForFittedSize(page, after);
    await assertPtySize(page, await sttySize(page, 'font'), larger, 'the PTY follows the font size');
    assert.deepEqual(await terminalSize(page), larger, 'the terminal kept its size');

    await page.getByTestId('font-smaller').click();
    await page.getByTestId('font-smaller').click();
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('resizes in quick succession never take the terminal back to an older size', TEST, async () => {
    const start = await waitForFittedSize(page);
    await page.waitForFunction((start) => {
      const announced = (window as unknown as { __dispatch: Hooks }).__dispatch.announcedSize();
      return announced?.cols === start.cols && announced.rows === start.rows;
    }, start);
    // Six font changes a frame apart: each fit asks for a size before the
    // gateway has announced the one before.
    const fitted = await page.evaluate(async () => {
      const hooks = (window as unknown as { __dispatch: Hooks }).__dispatch;
      const frame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));
      const sizes: Size[] = [];
      hooks.recordTerminalSizes();
      for (const id of ['font-larger', 'font-larger', 'font-larger', 'font-smaller', 'font-smaller', 'font-smaller']) {
        (document.querySelector(`[data-testid="${id}"]`) as HTMLButtonElement).click();
        await frame();
        const size = hooks.fittedSize();
        if (size) sizes.push(size);
      }
      return sizes;
    });
    assert.deepEqual(fitted[fitted.length - 1], start, 'the same font again fits the same size');
    const steps = fitted.filter((size, i) => {
      const previous = i === 0 ? start : fitted[i - 1];
      return size.cols !== previous.cols || size.rows !== previous.rows;
    });
    // The PTY took each size in turn and every change was announced, the stale ones too.
    await page
      .waitForFunction(
        (count) => (window as unknown as { __dispatch: Hooks }).__dispatch.recordedTerminalSizes().announced.length >= count,
        steps.length + 1,
      )
      .catch(async (error: Error) => {
        throw new Error(`${error.message}\nrecorded: ${JSON.stringify(await recordedTerminalSizes(page))}, fitted: ${JSON.stringify(fitted)}`);
      });
    // Output written after the announcements: the emulator has applied them.
    const pty = await sttySize(page, 'burst');
    const record = await recordedTerminalSizes(page);
    assert.deepEqual(record.announced, [start, ...steps], 'the PTY sizes announced');
    assert.deepEqual(record.resizes, steps, 'the terminal took each fitted size once, in order');
    await assertPtySize(page, pty, start, 'the PTY has the last size');
    assert.deepEqual(await terminalSize(page), start, 'the terminal kept its size');
  });

  test('a reload finds the same screen', TEST, async () => {
    const id = await activeSessionId(page);
    await run(page, 'echo marker-$((6*7))');
    await waitForBuffer(page, /^marker-42$/m);
    await page.reload();
    await page.waitForFunction(() => {
      const hooks = (window as unknown as { __dispatch?: { terminalState(): string | null } }).__dispatch;
      return hooks?.terminalState() === 'attached';
    });
    assert.equal(await activeSessionId(page), id, 'the same session is open again');
    await waitForBuffer(page, /^marker-42$/m);
    await waitForBuffer(page, /echo marker-\$\(\(6\*7\)\)/);
    await run(page, 'echo still-$((1+1))');
    await waitForBuffer(page, /^still-2$/m);
  });

  test('two sessions open, end one', TEST, async () => {
    const first = await activeSessionId(page);
    const second = await createSession(page, 'second');
    assert.notEqual(first, second);
    await page.getByTestId('terminal-tab').nth(1).waitFor();
    assert.equal(await page.getByTestId('terminal-tab').count(), 2);

    // Switch to the first and back: each tab keeps its own terminal.
    await page.locator(`[data-testid="terminal-tab"][data-session-id="${first}"]`).click();
    await page.waitForFunction((id) => (window as unknown as { __dispatch: { activeSessionId(): string } }).__dispatch.activeSessionId() === id, first);
    await waitForBuffer(page, /^marker-42$/m);
    await page.locator(`[data-testid="session-item"][data-session-id="${second}"] button`).click();
    await page.waitForFunction((id) => (window as unknown as { __dispatch: { activeSessionId(): string } }).__dispatch.activeSessionId() === id, second);
    await run(page, 'echo in-second');
    await waitForBuffer(page, /^in-second$/m);

    // End the second, with the confirmation.
    await page.getByTestId('end-session').click();
    await page.getByTestId('dialog').waitFor();
    await page.getByTestId('dialog-confirm').click();
    await page.waitForFunction(
      (id) => {
        const item = document.querySelector(`[data-testid="session-item"][data-session-id="${id}"]`);
        return !item || item.getAttribute('data-status') === 'exited';
      },
      second,
    );
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="terminal-tab"]').length === 1);
    assert.equal(await activeSessionId(page), first, 'the remaining session is shown');
    const remaining = page.locator(`[data-testid="session-item"][data-session-id="${first}"]`);
    assert.equal(await remaining.getAttribute('data-status'), 'running');
    await waitForPrompt(page);
    await run(page, 'echo first-alive');
    await waitForBuffer(page, /^first-alive$/m);
  });

  test('the session list updates live from a second browser', TEST, async () => {
    const other = await newContext(browser);
    try {
      const watcher = await other.newPage();
      await login(watcher, gateway.url);
      const name = 'from-elsewhere';
      const created = await createSession(page, name);
      const item = watcher.locator(`[data-testid="session-item"][data-session-id="${created}"]`);
      await item.waitFor({ timeout: 15_000 });
      assert.equal(await item.getAttribute('data-name'), name);

      await page.getByTestId('end-session').click();
      await page.getByTestId('dialog-confirm').click();
      await watcher.waitForFunction(
        (id) => {
          const element = document.querySelector(`[data-testid="session-item"][data-session-id="${id}"]`);
          return !element || element.getAttribute('data-status') === 'exited';
        },
        created,
        { timeout: 15_000 },
      );
    } finally {
      await other.close();
    }
  });

  test('desktop screenshots, dark and light', TEST, async () => {
    await run(page, 'clear; printf "\\e[1mdispatch\\e[0m \\e[32mok\\e[0m \\e[33mwarn\\e[0m \\e[31merror\\e[0m \\e[34mblue\\e[0m\\n"; ls -la /');
    await waitForBuffer(page, /^dispatch ok warn error blue$/m);
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    const dark = await background();
    await page.screenshot({ path: join(ensureArtifacts(), 'desktop-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.waitForTimeout(300);
    assert.notEqual(await background(), dark, 'the theme follows the system scheme');
    await page.screenshot({ path: join(ensureArtifacts(), 'desktop-light.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
  });

  test('search the scrollback', TEST, async () => {
    await page.getByTestId('search-toggle').click();
    await page.getByTestId('search-input').fill('dispatch ok');
    await page.waitForFunction(() =>
      (window as unknown as { __dispatch: { selectionText(): string } }).__dispatch.selectionText().includes('dispatch ok'),
    );
    await page.waitForFunction(() => /^1 of 1$/.test(document.querySelector('.search-count')?.textContent ?? ''));
    await page.screenshot({ path: join(ensureArtifacts(), 'desktop-search.png') });
    await page.getByTestId('search-input').press('Escape');
    assert.equal(await page.getByTestId('search-input').isVisible(), false);
  });

  test('phone: the key bar sends Esc and Ctrl-C', TEST, async () => {
    const phone = await newContext(browser, { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, colorScheme: 'dark' });
    try {
      const mobile = await phone.newPage();
      mobile.on('pageerror', (error) => errors.push(`phone pageerror: ${error.message}`));
      await login(mobile, gateway.url);
      await mobile.screenshot({ path: join(ensureArtifacts(), 'phone-list.png') });
      await createSession(mobile, 'phone');
      const keybar = mobile.getByTestId('keybar');
      await keybar.waitFor({ state: 'visible' });
      const size = await terminalSize(mobile);
      assert.ok(size && size.cols >= 30 && size.cols <= 60, `a phone-sized terminal: ${JSON.stringify(size)}`);

      // Esc reaches the program: cat -v shows it as ^[.
      await run(mobile, 'cat -v');
      await mobile.waitForTimeout(300);
      await keybar.locator('[data-key="Esc"]').click();
      await mobile.keyboard.press('Enter');
      await waitForBuffer(mobile, /^\^\[$/m);

      // Sticky Ctrl, then c: interrupts cat, then a sleep.
      await keybar.locator('[data-key="Ctrl"]').click();
      assert.equal(await keybar.locator('[data-key="Ctrl"]').getAttribute('data-level'), 'once');
      await mobile.keyboard.type('c');
      assert.equal(await keybar.locator('[data-key="Ctrl"]').getAttribute('data-level'), 'off');
      await run(mobile, 'sleep 100');
      await mobile.waitForTimeout(500);
      await keybar.locator('[data-key="Ctrl"]').click();
      await mobile.keyboard.type('c');
      await run(mobile, 'echo after-$((2+3))');
      await waitForBuffer(mobile, /^after-5$/m, 15_000);
      await mobile.screenshot({ path: join(ensureArtifacts(), 'phone-terminal.png') });
      await mobile.getByTestId('sessions-toggle').click();
      await mobile.waitForTimeout(300);
      await mobile.screenshot({ path: join(ensureArtifacts(), 'phone-drawer.png') });
    } finally {
      await phone.close();
    }
  });

  test('no script errors on the page', TEST, () => {
    assert.deepEqual(errors, []);
  });

  test('an unreachable broker is shown, and logging out works', TEST, async () => {
    const orphan = await startGateway({ env: { BROKER_URL: 'unix:/nonexistent/dispatch-broker.sock' }, ready: false });
    const other = await newContext(browser);
    try {
      const lost = await other.newPage();
      await login(lost, orphan.url);
      await lost.waitForFunction(
        () => document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === 'broker-unreachable',
      );
      assert.match((await lost.getByTestId('connection-status').textContent()) ?? '', /broker unreachable/i);
      await lost.getByTestId('new-session').click();
      await lost.getByTestId('create-session').click();
      await lost.getByText(/could not create the session/i).waitFor();
      await lost.screenshot({ path: join(ensureArtifacts(), 'broker-unreachable.png') });
      await lost.getByTestId('logout').click();
      await lost.getByTestId('login-key').waitFor();
      await lost.reload();
      await lost.getByTestId('login-key').waitFor();
    } finally {
      await other.close();
      await orphan.stop();
    }
  });

  test('rate-limited logins say when to try again', TEST, async () => {
    const strict = await startGateway({
      env: { BROKER_URL: 'unix:/nonexistent/dispatch-broker.sock', LOGIN_BURST: '2', LOGIN_REFILL_SECS: '60' },
      ready: false,
    });
    const other = await newContext(browser);
    try {
      const limited = await other.newPage();
      await limited.goto(strict.url);
      const error = limited.getByTestId('login-error');
      for (let attempt = 0; attempt < 3; attempt++) {
        await limited.getByTestId('login-key').fill(`wrong-${attempt}`);
        await limited.getByTestId('login-submit').click();
        await error.waitFor({ state: 'visible' });
        if (/too many attempts/i.test((await error.textContent()) ?? '')) break;
        await limited.waitForFunction(() => !(document.querySelector('[data-testid="login-submit"]') as HTMLButtonElement).disabled);
      }
      assert.match((await error.textContent()) ?? '', /too many attempts\. try again in \d+ seconds?/i);
    } finally {
      await other.close();
      await strict.stop();
    }
  });

  test('after a gateway restart the page reconnects and restores the screen', TEST, async () => {
    const broker = await startBroker();
    // The login survives because both gateways share one state directory
    // (the cookie secret's salt and the revocations live there).
    const stateDir = mkdtempSync(join(tmpdir(), 'dispatch-e2e-state-'));
    const env = { BROKER_URL: broker.url, BROKER_TOKEN: broker.token, STATE_DIR: stateDir };
    const first = await startGateway({ env });
    let second: Gateway | null = null;
    const other = await newContext(browser);
    const status = (p: Page) => p.getByTestId('connection-status').getAttribute('data-state');
    try {
      const restarted = await other.newPage();
      await login(restarted, first.url);
      await createSession(restarted, 'survivor');
      await run(restarted, 'echo before-$((5*5))');
      await waitForBuffer(restarted, /^before-25$/m);

      await first.stop();
      await restarted.waitForFunction(() =>
        ['reconnecting', 'connecting'].includes(
          document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') ?? '',
        ),
      );
      await restarted.screenshot({ path: join(ensureArtifacts(), 'gateway-restarting.png') });

      second = await startGateway({ env, port: Number(new URL(first.url).port) });
      await restarted.waitForFunction(
        () => (window as unknown as { __dispatch: { terminalState(): string } }).__dispatch.terminalState() === 'attached',
        undefined,
        { timeout: 30_000 },
      );
      assert.equal(await status(restarted), 'connected');
      await waitForBuffer(restarted, /^before-25$/m);
      await run(restarted, 'echo after-$((6*6))');
      await waitForBuffer(restarted, /^after-36$/m);
    } finally {
      await other.close();
      await second?.stop();
      await first.stop();
      await broker.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('state is shown when the terminal cannot connect', TEST, async () => {
    await page.goto(`${gateway.url}/#/terminals/00000000-0000-4000-8000-000000000000`);
    await page.waitForFunction(() => {
      const status = document.querySelector('[data-testid="connection-status"]');
      return status?.getAttribute('data-state') === 'not-found';
    });
    assert.equal(await terminalState(page), 'stopped');
    assert.ok((await bufferText(page)) === '');
  });
});
