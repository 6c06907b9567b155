// End-to-end tests of what a person does in and around a terminal: rename
// and end sessions, exit codes, links, copy and paste, the clipboard escape
// (OSC 52), wide characters, the renderer, full screen, a lost network, and
// that the page loads nothing from elsewhere. A real gateway and broker,
// Debian's Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  activeSessionId,
  bufferText,
  cellCenter,
  connectionStatus,
  createSession,
  cursor,
  ensureArtifacts,
  launchBrowser,
  login,
  newContext,
  run,
  screenRow,
  startGateway,
  startProxy,
  terminalState,
  waitForBuffer,
  waitForPrompt,
  waitForStatus,
  type Gateway,
  type NetworkProxy,
} from './harness';

const TEST = { timeout: 120_000 };

describe('dispatch terminals', { timeout: 600_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const foreignRequests: string[] = [];
  const errors: string[] = [];

  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
    context = await newContext(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
    // Every request of every page of this context stays on the gateway's origin.
    context.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith(gateway.url + '/') && !/^(data|blob):/.test(url) && !url.startsWith(gateway.url.replace(/^http/, 'ws') + '/')) {
        foreignRequests.push(url);
      }
    });
    await context.addInitScript(() => {
      const violations: string[] = [];
      (window as unknown as { __cspViolations: string[] }).__cspViolations = violations;
      document.addEventListener('securitypolicyviolation', (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
    });
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`);
    });
    await login(page, gateway.url);
    await createSession(page, 'features');
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('rename a session; another browser sees the name, shown as text', TEST, async () => {
    const id = await activeSessionId(page);
    const other = await newContext(browser);
    try {
      const watcher = await other.newPage();
      await login(watcher, gateway.url);
      const name = '<img src=x onerror="window.__injected=1">build & test';
      await page.getByTestId('rename-session').click();
      await page.getByTestId('dialog-input').fill(name);
      await page.getByTestId('dialog-confirm').click();

      const item = page.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
      await page.waitForFunction(
        ({ id, name }) => document.querySelector(`[data-testid="session-item"][data-session-id="${id}"]`)?.getAttribute('data-name') === name,
        { id, name },
      );
      assert.match((await item.textContent()) ?? '', /<img src=x onerror="window.__injected=1">build & test/);
      assert.equal((await page.locator('.toolbar-title').textContent())?.trim(), name);
      assert.equal((await page.locator(`[data-testid="terminal-tab"][data-session-id="${id}"]`).textContent())?.trim(), name);

      const seen = watcher.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
      await watcher.waitForFunction(
        ({ id, name }) => document.querySelector(`[data-testid="session-item"][data-session-id="${id}"]`)?.getAttribute('data-name') === name,
        { id, name },
        { timeout: 15_000 },
      );
      assert.match((await seen.textContent()) ?? '', /build & test/);
      for (const p of [page, watcher]) {
        assert.equal(await p.locator('.app img').count(), 0, 'the name made no element');
        assert.equal(await p.evaluate(() => (window as unknown as { __injected?: number }).__injected), undefined);
      }
      // A cancelled rename changes nothing.
      await page.getByTestId('rename-session').click();
      await page.getByTestId('dialog-input').fill('not this');
      await page.getByTestId('dialog-cancel').click();
      assert.equal(await item.getAttribute('data-name'), name);
    } finally {
      await other.close();
    }
  });

  test('ending asks first; cancelling keeps the session', TEST, async () => {
    const id = await activeSessionId(page);
    await page.getByTestId('end-session').click();
    await page.getByTestId('dialog').waitFor();
    assert.match((await page.getByTestId('dialog').textContent()) ?? '', /cannot be undone/);
    await page.getByTestId('dialog-cancel').click();
    await page.getByTestId('dialog').waitFor({ state: 'detached' });
    assert.equal(await activeSessionId(page), id);
    assert.equal(await terminalState(page), 'attached');
    assert.equal(await page.locator(`[data-testid="session-item"][data-session-id="${id}"]`).getAttribute('data-status'), 'running');
    await run(page, 'echo still-here');
    await waitForBuffer(page, /^still-here$/m);
  });

  test('links in the output open in a new tab', TEST, async () => {
    const plain = `${gateway.url}/healthz?from=text`;
    const hyperlink = `${gateway.url}/healthz?from=osc8`;
    await run(page, `clear; echo "see ${plain} here"; printf '\\e]8;;${hyperlink}\\e\\\\labelled-link\\e]8;;\\e\\\\\\n'`);
    await waitForBuffer(page, /^labelled-link$/m);

    for (const [pattern, column, url] of [
      [/^see http/, 8, plain],
      [/^labelled-link$/, 3, hyperlink],
    ] as const) {
      const at = await cellCenter(page, await screenRow(page, pattern), column);
      await page.mouse.move(at.x - 20, at.y);
      await page.mouse.move(at.x, at.y, { steps: 4 });
      const [opened] = await Promise.all([context.waitForEvent('page', { timeout: 10_000 }), page.mouse.click(at.x, at.y)]);
      await opened.waitForLoadState();
      assert.equal(opened.url(), url);
      assert.equal(await opened.evaluate(() => window.opener), null, 'the link cannot reach back into the page');
      await opened.close();
    }
  });

  test('copy the selection with Ctrl+Shift+C, paste with Ctrl+Shift+V', TEST, async () => {
    await run(page, 'clear; echo copy-me-$((6*7))');
    await waitForBuffer(page, /^copy-me-42$/m);
    const at = await cellCenter(page, await screenRow(page, /^copy-me-42$/), 3);
    await page.mouse.dblclick(at.x, at.y);
    await page.waitForFunction(() => (window as unknown as { __dispatch: { selectionText(): string } }).__dispatch.selectionText() === 'copy-me-42');
    await page.keyboard.press('Control+Shift+C');
    await page.waitForFunction(async () => (await navigator.clipboard.readText()) === 'copy-me-42');

    await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((3*3))'));
    await page.getByTestId('terminal').click();
    await page.keyboard.press('Control+Shift+V');
    await waitForBuffer(page, /echo pasted-\$\(\(3\*3\)\)$/m);
    await page.keyboard.press('Enter');
    await waitForBuffer(page, /^pasted-9$/m);
  });

  test('programs may set the clipboard (OSC 52) but never read it', TEST, async () => {
    await run(page, `clear; printf '\\e]52;c;%s\\a' "$(printf osc52-set | base64)"; echo set-sent`);
    await waitForBuffer(page, /^set-sent$/m);
    await page.waitForFunction(async () => (await navigator.clipboard.readText()) === 'osc52-set');

    await page.evaluate(() => navigator.clipboard.writeText('clipboard-secret'));
    // Ask for the clipboard, then show whatever the terminal answered.
    await run(page, `printf '\\e]52;c;?\\a'; read -r -s -t 2 -N 64 reply; printf 'reply=%q\\n' "$reply"`);
    const reply = (await waitForBuffer(page, /^reply=(.*)$/m))[1];
    assert.doesNotMatch(reply, /Y2xpcGJvYXJkLXNlY3JldA|clipboard-secret/, `the clipboard leaked: ${reply}`);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'clipboard-secret');
  });

  test('wide characters take two cells (Unicode 11 widths)', TEST, async () => {
    // U+1F642 is one cell wide in Unicode 6 tables and two in Unicode 11.
    await run(page, `clear; printf '\\U0001F642X'; read -r -s -N 1`);
    await waitForBuffer(page, /^\u{1F642}X$/mu);
    assert.equal((await cursor(page)).x, 3, 'the emoji took two cells and X one');
    await page.keyboard.press('q');
    await waitForPrompt(page);
  });

  test('the renderer is WebGL when the browser has it, the DOM renderer when not', TEST, async () => {
    const webgl = await page.evaluate(() => !!document.createElement('canvas').getContext('webgl2'));
    const renderer = await page.evaluate(() => (window as unknown as { __dispatch: { renderer(): string } }).__dispatch.renderer());
    assert.equal(renderer, webgl ? 'webgl' : 'dom');

    const noGl = await newContext(browser);
    try {
      await noGl.addInitScript(() => {
        const original = HTMLCanvasElement.prototype.getContext;
        HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement, type: string, ...rest: unknown[]) {
          if (/webgl/.test(type)) return null;
          return (original as (...args: unknown[]) => RenderingContext | null).call(this, type, ...rest);
        } as typeof original;
      });
      const fallback = await noGl.newPage();
      await login(fallback, gateway.url);
      await createSession(fallback, 'no-webgl');
      assert.equal(await fallback.evaluate(() => (window as unknown as { __dispatch: { renderer(): string } }).__dispatch.renderer()), 'dom');
      await run(fallback, 'echo drawn-$((2*4))');
      await waitForBuffer(fallback, /^drawn-8$/m);
      assert.ok(await fallback.locator('.xterm-rows').isVisible(), 'the DOM renderer draws the rows');
      assert.match((await fallback.locator('.xterm-rows').textContent()) ?? '', /drawn-8/);
    } finally {
      await noGl.close();
    }
  });

  test('full screen locks the keyboard, so browser shortcuts reach the terminal', TEST, async () => {
    await page.evaluate(() => {
      const calls: string[] = [];
      (window as unknown as { __keyboardCalls: string[] }).__keyboardCalls = calls;
      const keyboard = (navigator as Navigator & { keyboard?: { lock(codes?: string[]): Promise<void>; unlock(): void } }).keyboard;
      if (!keyboard) return;
      const lock = keyboard.lock.bind(keyboard);
      const unlock = keyboard.unlock.bind(keyboard);
      keyboard.lock = (codes?: string[]) => {
        calls.push('lock');
        return lock(codes);
      };
      keyboard.unlock = () => {
        calls.push('unlock');
        unlock();
      };
    });
    await page.getByTestId('fullscreen').click();
    await page.waitForFunction(() => document.fullscreenElement !== null);
    await page.waitForFunction(() => (window as unknown as { __keyboardCalls: string[] }).__keyboardCalls.includes('lock'));
    // Ctrl+W is the terminal's (delete the word before the cursor).
    await page.keyboard.type('echo kept gone');
    await page.keyboard.press('Control+w');
    await page.keyboard.press('Enter');
    await waitForBuffer(page, /^kept$/m);
    await page.getByTestId('fullscreen').click();
    await page.waitForFunction(() => document.fullscreenElement === null);
    assert.ok((await page.evaluate(() => (window as unknown as { __keyboardCalls: string[] }).__keyboardCalls)).includes('unlock'));
  });

  test('the page installs as an app: a valid web manifest from its own origin', TEST, async () => {
    const response = await fetch(`${gateway.url}/manifest.webmanifest`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/manifest+json');
    const cdp = await context.newCDPSession(page);
    try {
      const manifest = (await cdp.send('Page.getAppManifest')) as { url: string; errors: { message: string }[]; data?: string };
      assert.equal(manifest.url, `${gateway.url}/manifest.webmanifest`);
      assert.deepEqual(manifest.errors, [], 'Chromium parsed it without errors');
      const data = JSON.parse(manifest.data ?? '{}') as { display: string; start_url: string; icons: { src: string; type: string }[] };
      assert.equal(data.display, 'standalone');
      for (const icon of data.icons) {
        const fetched = await fetch(new URL(icon.src, manifest.url));
        assert.equal(fetched.status, 200, icon.src);
        assert.equal(fetched.headers.get('content-type'), icon.type);
      }
    } finally {
      await cdp.detach();
    }
  });

  test('closing the page by a shortcut while a terminal is live asks first', TEST, async () => {
    const id = await activeSessionId(page);
    const second = await context.newPage();
    await second.goto(`${gateway.url}/#/terminals/${id}`);
    await second.waitForFunction(() => (window as unknown as { __dispatch?: { terminalState(): string } }).__dispatch?.terminalState() === 'attached');
    await second.getByTestId('terminal').click();
    // Ctrl held, as when Ctrl+W or Ctrl+R is pressed: the browser asks.
    await second.keyboard.down('Control');
    const asked = second.waitForEvent('dialog');
    await second.close({ runBeforeUnload: true });
    const dialog = await asked;
    assert.equal(dialog.type(), 'beforeunload');
    await dialog.dismiss();
    await second.keyboard.up('Control');
    assert.equal(second.isClosed(), false, 'the page stayed');
    await run(second, 'echo stayed-$((8*8))');
    await waitForBuffer(second, /^stayed-64$/m);
    // Without a shortcut (the tab's close button) it closes at once.
    let dialogs = 0;
    second.on('dialog', (d) => {
      dialogs++;
      void d.accept();
    });
    const closed = second.waitForEvent('close');
    await second.close({ runBeforeUnload: true });
    await closed;
    assert.equal(dialogs, 0);
  });

  test('a lost network is shown, and the page reattaches with what was printed meanwhile', TEST, async () => {
    let proxy: NetworkProxy | null = null;
    const other = await newContext(browser);
    try {
      proxy = await startProxy(gateway.url);
      const remote = await other.newPage();
      await login(remote, proxy.url);
      await createSession(remote, 'roaming');
      await run(remote, 'echo before-$((3*3)); (sleep 2; echo during-$((4*4))) &');
      await waitForBuffer(remote, /^before-9$/m);

      proxy.cut();
      await waitForStatus(remote, 'reconnecting');
      assert.match((await connectionStatus(remote)).label, /connection lost/i);
      assert.match((await remote.locator('.pane:not([hidden]) .pane-banner').textContent()) ?? '', /connection lost/i);
      await remote.screenshot({ path: join(ensureArtifacts(), 'network-lost.png') });
      // The background job prints while the page is away.
      await new Promise((resolve) => setTimeout(resolve, 3000));

      proxy.restore();
      await waitForStatus(remote, 'connected', 30_000);
      assert.equal(await terminalState(remote), 'attached');
      await waitForBuffer(remote, /during-16$/m);
      await waitForBuffer(remote, /^before-9$/m);
      await run(remote, 'echo back-$((5*5))');
      await waitForBuffer(remote, /^back-25$/m);
      assert.equal(await remote.locator('.pane:not([hidden]) .pane-banner').isVisible(), false, 'the banner is gone');
    } finally {
      await other.close();
      await proxy?.close();
    }
  });

  test('a network that drops silently is noticed, and the page reattaches when it is back', { timeout: 180_000 }, async () => {
    let proxy: NetworkProxy | null = null;
    const other = await newContext(browser);
    try {
      proxy = await startProxy(gateway.url);
      const remote = await other.newPage();
      await login(remote, proxy.url);
      await createSession(remote, 'silent');
      await run(remote, 'echo before-$((4*5))');
      await waitForBuffer(remote, /^before-20$/m);

      // Nothing closes: only a ping that goes unanswered tells.
      proxy.stall();
      const stalledAt = Date.now();
      await waitForStatus(remote, 'reconnecting', 60_000);
      const noticed = Date.now() - stalledAt;
      assert.match((await connectionStatus(remote)).label, /connection lost/i);
      await remote.screenshot({ path: join(ensureArtifacts(), 'network-silent.png') });

      proxy.restore();
      await waitForStatus(remote, 'connected', 60_000);
      await waitForBuffer(remote, /^before-20$/m);
      await run(remote, 'echo after-$((7*7))');
      await waitForBuffer(remote, /^after-49$/m);
      console.log(`# a silent network was noticed after ${(noticed / 1000).toFixed(1)} s`);
    } finally {
      await other.close();
      await proxy?.close();
    }
  });

  test('input typed while the network is down is refused visibly and never sent later', TEST, async () => {
    let proxy: NetworkProxy | null = null;
    const other = await newContext(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
    try {
      proxy = await startProxy(gateway.url);
      const remote = await other.newPage();
      await login(remote, proxy.url);
      await createSession(remote, 'offline-typing');
      await run(remote, 'echo before-$((2*3))');
      await waitForBuffer(remote, /^before-6$/m);
      const notice = remote.getByTestId('input-dropped');
      assert.equal(await notice.isVisible(), false, 'no notice while connected');

      proxy.cut();
      await waitForStatus(remote, 'reconnecting');
      await remote.getByTestId('terminal').click();
      await remote.keyboard.type('echo blind-$((6*7))');
      await remote.keyboard.press('Enter');
      await notice.waitFor({ state: 'visible', timeout: 5000 });
      assert.match((await notice.textContent()) ?? '', /not connected: input not sent/i);
      assert.ok(Number(await notice.getAttribute('data-count')) >= 2, 'every key counts');
      const banner = remote.locator('.pane:not([hidden]) .pane-banner');
      assert.match((await banner.textContent()) ?? '', /connection lost/i, 'beside the connection state');
      // A paste is refused the same way.
      const before = Number(await notice.getAttribute('data-count'));
      await remote.evaluate(() => navigator.clipboard.writeText('echo pasted-$((7*8))'));
      await remote.keyboard.press('Control+Shift+V');
      await remote.waitForFunction(
        (before) => Number(document.querySelector('[data-testid="input-dropped"]')?.getAttribute('data-count')) > before,
        before,
        { timeout: 5000 },
      );
      await remote.screenshot({ path: join(ensureArtifacts(), 'input-dropped.png') });

      proxy.restore();
      await waitForStatus(remote, 'connected', 30_000);
      await notice.waitFor({ state: 'hidden', timeout: 5000 });
      assert.equal(await banner.isVisible(), false, 'the banner is gone');
      await run(remote, 'echo after-$((9*9))');
      await waitForBuffer(remote, /^after-81$/m);
      const text = await bufferText(remote);
      assert.doesNotMatch(text, /blind|pasted/, `nothing typed while down reached the shell:\n${text}`);
    } finally {
      await other.close();
      await proxy?.close();
    }
  });

  test('a session that exits shows its exit code', TEST, async () => {
    const id = await createSession(page, 'short-lived');
    await run(page, 'exit 3');
    await waitForStatus(page, 'ended');
    assert.equal((await connectionStatus(page)).label, 'Session ended (exit code 3)');
    assert.match((await page.locator('.pane:not([hidden]) .pane-banner').textContent()) ?? '', /ended with exit code 3/);
    const item = page.locator(`[data-testid="session-item"][data-session-id="${id}"]`);
    await page.waitForFunction((id) => document.querySelector(`[data-testid="session-item"][data-session-id="${id}"]`)?.getAttribute('data-status') === 'exited', id);
    assert.match((await item.textContent()) ?? '', /exited 3/);
    assert.equal(await page.getByTestId('end-session').isDisabled(), true);
    await page.screenshot({ path: join(ensureArtifacts(), 'session-ended.png') });
  });

  test('nothing was loaded from another origin, nothing broke the CSP, no script errors', TEST, async () => {
    assert.deepEqual(foreignRequests, []);
    assert.deepEqual(await page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations), []);
    assert.deepEqual(errors, []);
  });
});
