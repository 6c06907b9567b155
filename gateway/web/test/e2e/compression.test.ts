// End-to-end: the page asks for compressed terminal output (the
// dispatch.deflate-raw subprotocol), the gateway sends it compressed, and the
// terminal shows exactly what was printed. A real gateway and broker,
// Debian's Chromium driven by playwright-core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { createSession, launchBrowser, login, newContext, run, startGateway, waitForBuffer, waitForPrompt, type Gateway } from './harness';

describe('compressed terminal output', { timeout: 300_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let page: Page;
  const frames: Buffer[] = [];

  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
    page = await (await newContext(browser)).newPage();
    page.on('websocket', (socket) => {
      if (!socket.url().includes('/ws/sessions/')) return;
      socket.on('framereceived', (frame) => {
        if (typeof frame.payload !== 'string') frames.push(frame.payload);
      });
    });
    await login(page, gateway.url);
    await createSession(page, 'compressed');
    await waitForPrompt(page);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('seq renders in full from frames a third of its size', { timeout: 120_000 }, async () => {
    const lines = 30_000;
    frames.length = 0;
    await run(page, `seq 1 ${lines}; echo seq-''finished`);
    await waitForBuffer(page, /seq-finished/, 60_000);
    await waitForBuffer(page, new RegExp(`\\n${lines - 1}\\s*\\n${lines}\\s*\\n`), 10_000);
    const wire = frames.reduce((sum, frame) => sum + frame.length, 0);
    let decoded = 0;
    for (const frame of frames) {
      assert.ok(frame.length >= 5 && frame[0] <= 1, 'every output frame has the compressed header');
      decoded += frame.readUInt32BE(1);
    }
    let printed = 0;
    for (let n = 1; n <= lines; n++) printed += String(n).length + 2;
    assert.ok(decoded >= printed, `${decoded} decoded bytes for ${printed} printed`);
    assert.ok(wire * 3 <= decoded, `${wire} bytes on the wire for ${decoded} decoded`);
  });
});
