// End-to-end test of the egress panel: a real gateway running its egress
// proxy (EGRESS_LISTEN) and passing it to its broker child, a session whose
// curl goes through that proxy to an allowlisted upstream of the test's own
// and to a host outside the allowlist, and the toolbar's Network panel in
// Debian's Chromium listing both from GET /api/sessions/{id}/egress.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import {
  createSession,
  ensureArtifacts,
  launchBrowser,
  login,
  newContext,
  run,
  startGateway,
  waitForBuffer,
  type Gateway,
} from './harness';

const TEST = { timeout: 120_000 };
/** A loopback address other than 127.0.0.1, which NO_PROXY sends around the proxy. */
const UPSTREAM_HOST = '127.0.0.2';
const REFUSED_HOST = 'example.com';

/** A plain HTTP server on UPSTREAM_HOST answering `body` to every request. */
async function startUpstream(body: string): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((socket) => {
    socket.once('data', () => {
      socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length + 1}\r\nConnection: close\r\n\r\n${body}\n`);
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, UPSTREAM_HOST, resolve);
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('upstream has no port');
  return { port: address.port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function row(page: Page, host: string, decision: 'allowed' | 'refused'): Locator {
  return page.locator(`[data-testid="egress-row"][data-host="${host}"][data-decision="${decision}"]`);
}

describe('egress panel', { timeout: 300_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let upstream: { port: number; close(): Promise<void> };
  let page: Page;
  const marker = `egress-upstream-${randomBytes(4).toString('hex')}`;
  const errors: string[] = [];

  before(async () => {
    upstream = await startUpstream(marker);
    gateway = await startGateway({
      env: {
        EGRESS_LISTEN: '127.0.0.1:0',
        EGRESS_ALLOW: UPSTREAM_HOST,
        EGRESS_PORTS: `443,${upstream.port}`,
      },
    });
    browser = await launchBrowser();
    const context = await newContext(browser);
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`);
    });
    await login(page, gateway.url);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await upstream?.close();
  });

  test('the Network panel lists the hosts a session reached and was refused, and follows new connections', TEST, async () => {
    await createSession(page, 'egress');
    // Through the proxy (HTTPS_PROXY/HTTP_PROXY from the broker): a tunnel
    // to the allowlisted upstream, then a host outside the allowlist.
    await run(page, `clear; curl -sS --proxytunnel http://${UPSTREAM_HOST}:${upstream.port}/; curl -sS -o /dev/null -w "REFUSED=%{http_connect}\\n" https://${REFUSED_HOST}/`);
    await waitForBuffer(page, new RegExp(`^${marker}$`, 'm'));
    await waitForBuffer(page, /^REFUSED=403$/m);

    await page.getByTestId('egress-toggle').click();
    const panel = page.getByTestId('egress-panel');
    await panel.waitFor();
    const reached = row(page, UPSTREAM_HOST, 'allowed');
    const refused = row(page, REFUSED_HOST, 'refused');
    await reached.waitFor();
    await refused.waitFor();
    assert.equal(await reached.getAttribute('data-port'), String(upstream.port));
    assert.equal((await reached.getByTestId('egress-count').textContent())?.trim(), '1');
    const reachedCells = await reached.locator('td').allTextContents();
    assert.equal(reachedCells[0], `${UPSTREAM_HOST}:${upstream.port}`);
    assert.match(reachedCells[1], /reached/);
    // The request went up and the answer came down: both byte counts are above zero.
    assert.match(reachedCells[3], /^[1-9]\d* B$|KiB/, `bytes sent: ${reachedCells[3]}`);
    assert.match(reachedCells[4], /^[1-9]\d* B$|KiB/, `bytes received: ${reachedCells[4]}`);
    assert.match(reachedCells[5], /just now/);
    const refusedCells = await refused.locator('td').allTextContents();
    assert.equal(refusedCells[0], REFUSED_HOST);
    assert.match(refusedCells[1], /^refused.+/, `a reason follows the decision: ${refusedCells[1]}`);
    assert.equal(refusedCells[2], '1');
    assert.equal(refusedCells[3], '0 B');
    assert.match((await panel.textContent()) ?? '', /1 reached · 1 refused/);
    await page.screenshot({ path: join(ensureArtifacts(), 'egress-panel.png') });

    // A second refusal shows up while the panel stays open.
    await run(page, `curl -sS -o /dev/null -w "AGAIN=%{http_connect}\\n" https://${REFUSED_HOST}/`);
    await waitForBuffer(page, /^AGAIN=403$/m);
    await page.waitForFunction(
      (host) => document.querySelector(`[data-testid="egress-row"][data-host="${host}"] [data-testid="egress-count"]`)?.textContent === '2',
      REFUSED_HOST,
      { timeout: 15_000 },
    );

    // Another session has its own (empty) view; the panel follows the active tab.
    await createSession(page, 'quiet');
    await page.getByText('No connection through the egress proxy yet.').waitFor();
    await page.getByTestId('egress-close').click();
    assert.equal(await panel.isHidden(), true);
    assert.deepEqual(errors, []);
  });
});
