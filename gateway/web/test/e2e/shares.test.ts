// End-to-end test of read-only share links: the owner makes a link from the
// toolbar's share dialog, a second browser context without the key opens it,
// sees the session live and read-only on desktop and on a phone, types in
// vain, watches compressed output (the dispatch.deflate-raw subprotocol, as
// the owner's terminal has it) decode to what was printed, and is
// disconnected when the owner revokes the link. A real gateway
// and broker, Debian's Chromium driven by playwright-core; screenshots in
// artifacts/web/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { bufferText, createSession, ensureArtifacts, launchBrowser, login, newContext, run, startGateway, waitForBuffer, type Gateway } from './harness';

const TEST = { timeout: 120_000 };
const PHONE = { width: 375, height: 667 };

/** The text the share page's terminal shows (xterm's DOM rows). */
function shownText(page: Page): Promise<string> {
  return page.locator('[data-testid="share-terminal"] .xterm-rows').innerText();
}

async function waitForShown(page: Page, needle: string): Promise<void> {
  try {
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid="share-terminal"] .xterm-rows')?.textContent?.includes(text) ?? false,
      needle,
      { timeout: 20_000 },
    );
  } catch (error) {
    const status = await page.getByTestId('share-status').innerText().catch(() => '(no status)');
    const shown = await shownText(page).catch(() => '(no terminal)');
    throw new Error(`${needle} not shown; status: ${status}; terminal: ${shown}`, { cause: error });
  }
}

describe('read-only share links', { timeout: 600_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let owner: Page;
  let link: string;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];

  async function viewerPage(options: Parameters<typeof newContext>[1] = {}): Promise<Page> {
    const context = await newContext(browser, options);
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`viewer pageerror: ${error.message}`));
    return page;
  }

  before(async () => {
    ensureArtifacts();
    gateway = await startGateway();
    browser = await launchBrowser();
    const context = await newContext(browser);
    contexts.push(context);
    owner = await context.newPage();
    owner.on('pageerror', (error) => errors.push(`owner pageerror: ${error.message}`));
    await login(owner, gateway.url);
    await createSession(owner, 'shared-demo');
    await run(owner, 'echo before-$((6*7))');
    await waitForBuffer(owner, /^before-42$/m);
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await gateway?.stop();
  });

  test('the toolbar makes a link whose secret is in the fragment', TEST, async () => {
    await owner.getByTestId('share-toggle').click();
    const dialog = owner.getByTestId('share-dialog');
    await dialog.waitFor({ state: 'visible' });
    await owner.getByTestId('share-expiry').selectOption(String(3600));
    await owner.getByTestId('share-create').click();
    link = await owner.getByTestId('share-link').inputValue();
    const url = new URL(link);
    assert.equal(url.origin, gateway.url);
    assert.equal(url.pathname, '/share');
    assert.equal(url.search, '');
    assert.match(url.hash, /^#[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    await owner.getByTestId('share-row').first().waitFor();
    await owner.screenshot({ path: join(ensureArtifacts(), 'share-dialog.png') });
    await owner.getByTestId('share-close').click();
    await dialog.waitFor({ state: 'detached' });
  });

  test('a second context without the key watches live and its typing does nothing', TEST, async () => {
    const viewer = await viewerPage();
    await viewer.goto(link);
    await viewer.getByTestId('share-read-only').waitFor();
    await waitForShown(viewer, 'before-42');
    const title = await viewer.getByTestId('share-title').innerText();
    assert.match(title, /shared-demo/);
    // The secret left the address bar once exchanged.
    const shareId = new URL(link).hash.slice(1).split('.')[0];
    assert.equal(new URL(viewer.url()).hash, `#${shareId}`);

    await run(owner, 'echo live-$((7*6))');
    await waitForShown(viewer, 'live-42');

    await viewer.getByTestId('share-terminal').click();
    await viewer.keyboard.type('echo typed-$((2*3))');
    await viewer.keyboard.press('Enter');
    await run(owner, 'echo after-$((3*3))');
    await waitForShown(viewer, 'after-9');
    assert.ok(!(await bufferText(owner)).includes('typed'), 'the viewer typed into the session');
    assert.ok(!(await shownText(viewer)).includes('typed'));

    // The owner's dialog counts the viewer.
    await owner.getByTestId('share-toggle').click();
    await owner.waitForFunction(() => document.querySelector('[data-testid="share-row"]')?.getAttribute('data-viewers') === '1', null, {
      timeout: 20_000,
    });
    await owner.getByTestId('share-close').click();
    await viewer.screenshot({ path: join(ensureArtifacts(), 'share-page-desktop.png') });
  });

  test('the share page on a phone', TEST, async () => {
    const phone = await viewerPage({ viewport: PHONE, isMobile: true, hasTouch: true });
    // The cookie is per context: the phone opens the link with its secret.
    await phone.goto(link);
    await phone.getByTestId('share-read-only').waitFor();
    await waitForShown(phone, 'live-42');
    const header = await phone.getByTestId('share-page').boundingBox();
    assert.ok(header && header.width <= PHONE.width, 'the page fits the phone');
    // The terminal's area fits the screen; the PTY's columns are drawn with a
    // smaller font and, past a readable minimum, panned within it.
    const area = await phone.getByTestId('share-terminal').boundingBox();
    assert.ok(area && area.x >= 0 && area.x + area.width <= PHONE.width, `the terminal's area fits: ${JSON.stringify(area)}`);
    const font = await phone.locator('[data-testid="share-terminal"] .xterm-rows').evaluate((rows) => parseFloat(getComputedStyle(rows).fontSize));
    assert.ok(font < 14, `a smaller font on a phone: ${font}`);
    const scrollWidth = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= PHONE.width, `the page itself does not scroll sideways: ${scrollWidth}`);
    await phone.screenshot({ path: join(ensureArtifacts(), 'share-page-phone.png') });
  });

  test('the share page asks for compressed output and shows it decoded', TEST, async () => {
    const viewer = await viewerPage();
    // The subprotocol the gateway selected, from the handshake's answer.
    const cdp = await viewer.context().newCDPSession(viewer);
    await cdp.send('Network.enable');
    const selected: (string | undefined)[] = [];
    cdp.on('Network.webSocketHandshakeResponseReceived', ({ response }) => {
      const name = Object.keys(response.headers).find((header) => header.toLowerCase() === 'sec-websocket-protocol');
      selected.push(name === undefined ? undefined : response.headers[name]);
    });
    const frames: Buffer[] = [];
    viewer.on('websocket', (socket) => {
      if (!socket.url().includes('/api/shares/')) return;
      socket.on('framereceived', (frame) => {
        if (typeof frame.payload !== 'string') frames.push(frame.payload);
      });
    });
    await viewer.goto(link);
    await waitForShown(viewer, 'after-9');
    assert.deepEqual(selected, ['dispatch.deflate-raw']);

    const lines = 20_000;
    frames.length = 0;
    await run(owner, `seq 1 ${lines}; echo seq-''finished`);
    await waitForShown(viewer, 'seq-finished');
    const shown = await shownText(viewer);
    assert.match(shown, new RegExp(`(^|\\n)${lines - 2}\\s*\\n${lines - 1}\\s*\\n${lines}\\s*\\nseq-finished`), shown);
    let wire = 0;
    let decoded = 0;
    for (const frame of frames) {
      assert.ok(frame.length >= 5 && frame[0] <= 1, 'every output frame has the compressed header');
      wire += frame.length;
      decoded += frame.readUInt32BE(1);
    }
    let printed = 0;
    for (let n = 1; n <= lines; n++) printed += String(n).length + 2;
    assert.ok(decoded >= printed, `${decoded} decoded bytes for ${printed} printed`);
    assert.ok(wire * 2 <= decoded, `${wire} bytes on the wire for ${decoded} decoded`);
    // What the next test's viewer expects on the screen.
    await run(owner, 'clear; echo after-$((3*3))');
    await waitForShown(viewer, 'after-9');
  });

  test('revoking the link disconnects its viewers at once', TEST, async () => {
    const viewer = await viewerPage();
    await viewer.goto(link);
    await waitForShown(viewer, 'after-9');
    await owner.getByTestId('share-toggle').click();
    const rows = owner.getByTestId('share-row');
    await rows.first().getByTestId('share-revoke').click();
    await owner.getByTestId('share-list').getByText('No link yet.').waitFor();
    await viewer.getByTestId('share-status').getByText(/revoked or has expired/).waitFor();
    // The link no longer opens anywhere.
    const again = await viewerPage();
    await again.goto(link);
    await again.getByTestId('share-status').getByText(/does not open/).waitFor();
    await owner.getByTestId('share-close').click();
    assert.deepEqual(errors, []);
  });
});
