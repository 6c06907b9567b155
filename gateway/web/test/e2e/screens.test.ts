// One session on two screens: a desktop (1280 x 800) and a phone (390 x 844,
// touch). Watching never resizes the PTY; the screen that types, or presses
// "Fit to this screen", drives it; the other draws the PTY's size scaled to
// its width and pans, so no character is lost. Touch: a swipe scrolls with
// momentum and pans, a long press selects, the key bar copies, pastes and
// pages. Layouts: desktop, phone upright and on its side. A real gateway and
// broker, Debian's Chromium driven by playwright-core; touch through CDP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import {
  activeSessionId,
  cellCenter,
  createSession,
  ensureArtifacts,
  launchBrowser,
  login,
  newContext,
  run,
  screenRow,
  startGateway,
  sttySize,
  terminalSize,
  waitForBuffer,
  waitForFittedSize,
  type Gateway,
  type Hooks,
  type Size,
} from './harness';

const TEST = { timeout: 120_000 };
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const PHONE_LANDSCAPE = { width: 844, height: 390 };
/** 120 characters the command that prints them does not contain. */
const LINE = Array.from({ length: 26 * 26 }, (_, i) => String.fromCharCode(97 + Math.floor(i / 26), 97 + (i % 26)))
  .join('')
  .slice(0, 120);
const PRINT_LINE = 'printf %s {a..z}{a..z} | head -c 120; echo';

type ScreenHooks = Hooks & {
  drawnFontSize(): number | null;
  viewport(): { length: number; baseY: number; viewportY: number; rows: number } | null;
  selectionText(): string;
};

function hooks(page: Page): Promise<{ size: Size | null; announced: Size | null; font: number | null }> {
  return page.evaluate(() => {
    const dispatch = (window as unknown as { __dispatch: ScreenHooks }).__dispatch;
    return { size: dispatch.terminalSize(), announced: dispatch.announcedSize(), font: dispatch.drawnFontSize() };
  });
}

function viewport(page: Page): Promise<{ length: number; baseY: number; viewportY: number; rows: number }> {
  return page.evaluate(() => (window as unknown as { __dispatch: ScreenHooks }).__dispatch.viewport()!);
}

/** Waits until the page's terminal has the PTY size `size`. */
async function waitForTerminalSize(page: Page, size: Size): Promise<void> {
  await page
    .waitForFunction((size) => {
      const current = (window as unknown as { __dispatch: Hooks }).__dispatch.terminalSize();
      return current?.cols === size.cols && current.rows === size.rows;
    }, size)
    .catch(async (error: Error) => {
      throw new Error(`${error.message}\nwanted ${size.cols}x${size.rows}, have ${JSON.stringify(await hooks(page))}`);
    });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A one-finger swipe from `from` to `to` in `steps` moves 16 ms apart, as real touch events. */
async function swipe(cdp: CDPSession, from: { x: number; y: number }, to: { x: number; y: number }, steps = 10): Promise<void> {
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: from.x, y: from.y }] });
  for (let i = 1; i <= steps; i++) {
    const x = from.x + ((to.x - from.x) * i) / steps;
    const y = from.y + ((to.y - from.y) * i) / steps;
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y }] });
    await sleep(16);
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
}

/** A finger resting on `at` for `ms`. */
async function longPress(cdp: CDPSession, at: { x: number; y: number }, ms = 700): Promise<void> {
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: at.x, y: at.y }] });
  await sleep(ms);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
}

/** The middle of the terminal's visible area. */
async function hostCenter(page: Page): Promise<{ x: number; y: number }> {
  const box = await page.locator('.pane:not([hidden]) .xterm-host').boundingBox();
  if (!box) throw new Error('no terminal on screen');
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

describe('one session, a desktop and a phone', { timeout: 900_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let desktop: BrowserContext;
  let phone: BrowserContext;
  let desk: Page;
  let pocket: Page;
  let cdp: CDPSession;
  let id: string;
  let deskSize: Size;
  const errors: string[] = [];

  before(async () => {
    ensureArtifacts();
    gateway = await startGateway();
    browser = await launchBrowser();
    desktop = await newContext(browser, { viewport: DESKTOP });
    phone = await newContext(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
    await phone.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gateway.url });
    desk = await desktop.newPage();
    pocket = await phone.newPage();
    for (const page of [desk, pocket]) page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    await login(desk, gateway.url);
    id = await createSession(desk, 'shared');
    cdp = await phone.newCDPSession(pocket);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('watching from the phone leaves the size; typing there drives it; nothing is cut', TEST, async () => {
    deskSize = await waitForFittedSize(desk);
    const before = await sttySize(desk, 'before');
    assert.deepEqual(before, deskSize, 'the desktop drives at first');
    assert.ok(deskSize.cols >= 120, `the desktop holds the line on one row (${deskSize.cols} columns)`);
    await run(desk, PRINT_LINE);
    await waitForBuffer(desk, new RegExp(`^${LINE}$`, 'm'));

    // The phone opens the session and only watches.
    await login(pocket, gateway.url);
    await pocket.goto(`${gateway.url}/#/terminals/${id}`);
    await pocket.waitForFunction(
      (id) => {
        const dispatch = (window as unknown as { __dispatch: Hooks }).__dispatch;
        return dispatch.activeSessionId() === id && dispatch.terminalState() === 'attached';
      },
      id,
    );
    // Its terminal has the PTY's size and the whole line on one row.
    await waitForTerminalSize(pocket, deskSize);
    await waitForBuffer(pocket, new RegExp(`^${LINE}$`, 'm'));
    const watching = await hooks(pocket);
    assert.ok(watching.font !== null && watching.font >= 8 && watching.font < 13, `drawn smaller to fit: ${JSON.stringify(watching)}`);
    const note = pocket.getByTestId('size-note');
    await note.waitFor({ state: 'visible' });
    assert.match((await note.textContent()) ?? '', new RegExp(`Sized by another screen \\(${deskSize.cols}×${deskSize.rows}\\)`));
    // Wider than the phone even so: it pans.
    const pan = await pocket.evaluate(() => {
      const host = document.querySelector<HTMLElement>('.pane:not([hidden]) .xterm-host')!;
      return { scroll: host.scrollWidth, client: host.clientWidth };
    });
    assert.ok(pan.scroll > pan.client, `the phone pans: ${JSON.stringify(pan)}`);
    await pocket.screenshot({ path: join(ensureArtifacts(), 'screens-phone-watching.png') });

    assert.deepEqual(await sttySize(desk, 'attached'), deskSize, 'the phone attaching left the size');
    assert.equal(await desk.getByTestId('size-note').isVisible(), false, 'the desktop drives: no note');

    // The phone swipes (scrolls and pans): still the desktop's size.
    const center = await hostCenter(pocket);
    await swipe(cdp, center, { x: center.x - 150, y: center.y + 120 });
    const panned = await pocket.evaluate(() => document.querySelector<HTMLElement>('.pane:not([hidden]) .xterm-host')!.scrollLeft);
    assert.ok(panned > 0, `a sideways swipe pans (scrollLeft ${panned})`);
    assert.deepEqual(await sttySize(desk, 'scrolled'), deskSize, 'the phone scrolling left the size');

    // The phone types: it drives now, at its own size.
    const phoneSize = (await pocket.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.fittedSize()))!;
    assert.ok(phoneSize.cols < deskSize.cols, `the phone is narrower: ${JSON.stringify(phoneSize)}`);
    await run(pocket, 'echo phone=$(stty size)');
    await waitForBuffer(pocket, new RegExp(`^phone=${phoneSize.rows} ${phoneSize.cols}$`, 'm'));
    await waitForTerminalSize(desk, phoneSize);
    await note.waitFor({ state: 'hidden' });
    assert.equal((await hooks(pocket)).font, 13, 'the phone draws with its own font again');
    const deskNote = desk.getByTestId('size-note');
    await deskNote.waitFor({ state: 'visible' });
    await desk.screenshot({ path: join(ensureArtifacts(), 'screens-desktop-sized-by-phone.png') });
    await pocket.screenshot({ path: join(ensureArtifacts(), 'screens-phone-driving.png') });

    // "Fit to this screen" on the desktop takes the size back without typing.
    await desk.getByTestId('fit-screen').click();
    await waitForTerminalSize(pocket, deskSize);
    await deskNote.waitFor({ state: 'hidden' });
    await note.waitFor({ state: 'visible' });
    assert.deepEqual(await terminalSize(desk), deskSize);
    assert.deepEqual(errors, []);
  });

  test('a swipe scrolls the scrollback, and keeps going after the finger lifts', TEST, async () => {
    await run(pocket, 'clear; seq 1 400');
    await waitForBuffer(pocket, /^400$/m);
    const start = await viewport(pocket);
    assert.equal(start.viewportY, start.baseY, 'at the bottom');
    const center = await hostCenter(pocket);
    await swipe(cdp, { x: center.x, y: center.y - 150 }, { x: center.x, y: center.y + 150 });
    const lifted = await viewport(pocket);
    assert.ok(lifted.viewportY < start.viewportY, `swiping down shows earlier lines: ${JSON.stringify({ start, lifted })}`);
    await sleep(600);
    const settled = await viewport(pocket);
    assert.ok(settled.viewportY < lifted.viewportY, `momentum: ${JSON.stringify({ lifted, settled })}`);
    // Swiping up goes back towards the newest output.
    await swipe(cdp, { x: center.x, y: center.y + 150 }, { x: center.x, y: center.y - 150 });
    assert.ok((await viewport(pocket)).viewportY > settled.viewportY, 'swiping up shows later lines');
  });

  test('the key bar pages through the scrollback', TEST, async () => {
    const key = (label: string) => pocket.getByTestId('keybar').locator(`[data-key="${label}"]`);
    await key('Home').click();
    assert.equal((await viewport(pocket)).viewportY, 0, 'Home: the oldest line');
    await key('PgDn').click();
    const page = await viewport(pocket);
    // A page keeps one line of the page before, as xterm.js pages do.
    assert.equal(page.viewportY, page.rows - 1, 'PgDn: a page further');
    await key('PgUp').click();
    assert.equal((await viewport(pocket)).viewportY, 0, 'PgUp: a page back');
    await key('End').click();
    const end = await viewport(pocket);
    assert.equal(end.viewportY, end.baseY, 'End: the newest line');
  });

  test('a long press selects; Copy and Paste on the key bar', TEST, async () => {
    await run(pocket, 'clear; echo copy-me-$((40*100+242))');
    await waitForBuffer(pocket, /^copy-me-4242$/m);
    const row = await screenRow(pocket, /^copy-me-4242$/);
    await longPress(cdp, await cellCenter(pocket, row, 3));
    const selected = await pocket.evaluate(() => (window as unknown as { __dispatch: ScreenHooks }).__dispatch.selectionText());
    assert.equal(selected, 'copy-me-4242', 'the word under the finger');
    const key = (label: string) => pocket.getByTestId('keybar').locator(`[data-key="${label}"]`);
    await key('Copy').click();
    await pocket.waitForFunction(async () => (await navigator.clipboard.readText()) === 'copy-me-4242');
    await pocket.screenshot({ path: join(ensureArtifacts(), 'screens-phone-selection.png') });
    await run(pocket, '');
    await pocket.keyboard.type('echo pasted-');
    await key('Paste').click();
    // The clipboard is read asynchronously: Enter after the text is in.
    await waitForBuffer(pocket, /echo pasted-copy-me-4242$/m);
    await pocket.keyboard.press('Enter');
    await waitForBuffer(pocket, /^pasted-copy-me-4242$/m);
  });

  test('the font size is reachable on the phone', TEST, async () => {
    const larger = pocket.getByTestId('font-larger');
    assert.ok(await larger.isVisible(), 'Larger text is on the toolbar');
    await run(pocket, 'echo font');
    const before = (await hooks(pocket)).font!;
    await larger.click();
    await pocket.waitForFunction((before) => (window as unknown as { __dispatch: ScreenHooks }).__dispatch.drawnFontSize()! > before, before);
    await pocket.getByTestId('font-smaller').click();
    await pocket.waitForFunction((before) => (window as unknown as { __dispatch: ScreenHooks }).__dispatch.drawnFontSize() === before, before);
  });

  test('layouts: desktop, phone upright, phone on its side', TEST, async () => {
    await desk.screenshot({ path: join(ensureArtifacts(), 'screens-desktop.png') });
    assert.ok(await desk.locator('.sidebar').isVisible(), 'the desktop keeps its sidebar');
    await pocket.screenshot({ path: join(ensureArtifacts(), 'screens-phone-portrait.png') });

    await pocket.setViewportSize(PHONE_LANDSCAPE);
    await waitForFittedSize(pocket);
    const sidebar = await pocket.locator('.sidebar').isVisible();
    assert.equal(sidebar, false, 'no sidebar beside the terminal on a phone on its side');
    const area = await pocket.getByTestId('terminal').boundingBox();
    assert.ok(area && area.width >= PHONE_LANDSCAPE.width - 2, `the terminal has the width: ${JSON.stringify(area)}`);
    await pocket.getByTestId('keybar').waitFor({ state: 'visible' });
    await pocket.screenshot({ path: join(ensureArtifacts(), 'screens-phone-landscape.png') });
    // The drawer still opens the list.
    await pocket.getByTestId('sessions-toggle').click();
    await pocket.locator('.sidebar').waitFor({ state: 'visible' });
    await pocket.mouse.click(PHONE_LANDSCAPE.width - 10, PHONE_LANDSCAPE.height / 2);
    await pocket.locator('.sidebar').waitFor({ state: 'hidden' });
    assert.equal(await activeSessionId(pocket), id);
    await pocket.setViewportSize(PHONE);
  });
});
