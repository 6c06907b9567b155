// Starts a real dispatch-gateway (which starts its own broker child) on an
// ephemeral port with a temporary PTY_ROOT and a test key, and drives Debian's
// Chromium with playwright-core.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

/** The key of the gateway under test (`DISPATCH_E2E_KEY` with `DISPATCH_E2E_URL`). */
export const KEY = process.env.DISPATCH_E2E_KEY ?? 'e2e-test-key-6d1f0a9b27c4';
const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from gateway/web/dist-test/e2e/). */
export const REPO = resolve(here, '../../../..');
export const ARTIFACTS = join(REPO, 'artifacts', 'web');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

export interface Gateway {
  url: string;
  process: ChildProcess | null;
  output: () => string;
  stop(): Promise<void>;
}

function binary(name: string): string {
  const variable = name === 'dispatch-gateway' ? 'DISPATCH_GATEWAY_BIN' : 'DISPATCH_BROKER_BIN';
  return process.env[variable] ?? join(REPO, 'target', 'debug', name);
}

interface Service {
  process: ChildProcess;
  /** What the first line matching `listening` captured. */
  address: string;
  output: () => string;
  stop(): Promise<void>;
}

/** Spawns one of the binaries and waits for its "listening on ..." line. */
async function spawnService(name: string, env: NodeJS.ProcessEnv, listening: RegExp): Promise<Service> {
  const child = spawn(binary(name), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const address = await new Promise<string>((resolveAddress, reject) => {
    const deadline = setTimeout(() => reject(new Error(`${name} did not report its address in 60 s:\n${output}`)), 60_000);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      const match = listening.exec(output);
      if (match) {
        clearTimeout(deadline);
        resolveAddress(match[1]);
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`${name} exited with ${code}:\n${output}`));
    });
  });
  return {
    process: child,
    address,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

function baseEnv(home: string, ptyRoot: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C.UTF-8',
    PTY_ROOT: ptyRoot,
    PTY_MODE: 'shell',
    SHELL: '/bin/bash',
    RUST_LOG: process.env.RUST_LOG ?? 'info',
  };
}

/** Temporary session root and home; the shells start with no dotfiles of the machine's user. */
function scratch(): { ptyRoot: string; home: string; remove(): void } {
  const ptyRoot = mkdtempSync(join(tmpdir(), 'dispatch-e2e-'));
  const home = mkdtempSync(join(tmpdir(), 'dispatch-e2e-home-'));
  return {
    ptyRoot,
    home,
    remove() {
      rmSync(ptyRoot, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export interface GatewayOptions {
  /** Extra environment (e.g. `BROKER_URL` for a broker of the test's own). */
  env?: Record<string, string>;
  /** Wait until /readyz answers 200 (default true). */
  ready?: boolean;
  /** Port to listen on (default 0: any free port). */
  port?: number;
}

/**
 * Starts the gateway (with a broker child unless `env.BROKER_URL` is set);
 * resolves once /readyz answers 200. With `DISPATCH_E2E_URL` set, the
 * default gateway is that running one instead.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const external = process.env.DISPATCH_E2E_URL;
  if (external && !options.env) {
    return { url: external.replace(/\/$/, ''), process: null, output: () => '', stop: async () => {} };
  }
  const dirs = scratch();
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(dirs.home, dirs.ptyRoot),
    HOST: '127.0.0.1',
    PORT: String(options.port ?? 0),
    TERMINAL_KEY: KEY,
    BROKER_BIN: binary('dispatch-broker'),
    ...options.env,
  };
  const service = await spawnService('dispatch-gateway', env, /listening on (http:\/\/[0-9.:[\]]+)/);
  const url = service.address;
  const deadline = Date.now() + 60_000;
  while (options.ready !== false) {
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`gateway not ready in 60 s:\n${service.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    process: service.process,
    output: service.output,
    async stop() {
      await service.stop();
      dirs.remove();
    },
  };
}

export interface Broker {
  /** `unix:/...`, for the gateway's `BROKER_URL`. */
  url: string;
  token: string;
  stop(): Promise<void>;
}

/** Starts a broker of the test's own on a Unix socket, for gateways that come and go. */
export async function startBroker(): Promise<Broker> {
  const dirs = scratch();
  const url = `unix:${join(dirs.ptyRoot, 'broker.sock')}`;
  const token = 'e2e-broker-token-41c7';
  const env = { ...baseEnv(dirs.home, dirs.ptyRoot), BROKER_LISTEN: url, BROKER_TOKEN: token };
  const service = await spawnService('dispatch-broker', env, /dispatch-broker listening on (\S+)/);
  return {
    url,
    token,
    async stop() {
      await service.stop();
      dirs.remove();
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
  });
}

/** A browser context with the page's test hooks enabled. */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  await context.addInitScript(() => localStorage.setItem('dispatch.testHooks', '1'));
  context.setDefaultTimeout(20_000);
  return context;
}

/**
 * Opens the app and logs in with `key`; resolves once the app (its header's
 * logout) shows. (The session list's New may be in a closed drawer on a
 * phone, once a terminal open before comes back.)
 */
export async function login(page: Page, url: string, key = KEY): Promise<void> {
  await page.goto(url);
  await page.getByTestId('login-key').fill(key);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor();
  await page.getByTestId('new-session').waitFor({ state: 'attached' });
}

/** Creates a session through the form and waits until its terminal is attached. */
export async function createSession(page: Page, name: string, mode: 'shell' | 'claude' = 'shell'): Promise<string> {
  const before = await activeSessionId(page);
  await page.getByTestId('new-session').click();
  await page.getByTestId('session-mode').selectOption(mode);
  await page.getByTestId('session-name').fill(name);
  await page.getByTestId('create-session').click();
  await page.waitForFunction((previous) => {
    const hooks = (window as unknown as { __dispatch: Hooks }).__dispatch;
    return hooks.activeSessionId() !== previous && hooks.terminalState() === 'attached';
  }, before);
  const id = await activeSessionId(page);
  if (!id) throw new Error('no active session after creating one');
  await waitForPrompt(page);
  return id;
}

export interface Size {
  cols: number;
  rows: number;
}

/** The page's test hooks (`window.__dispatch`, enabled by `dispatch.testHooks`). */
export interface Hooks {
  activeSessionId(): string | null;
  bufferText(): string;
  screenText(): string;
  terminalSize(): Size | null;
  /** The size that fills the terminal's area with the current font. */
  fittedSize(): Size | null;
  /** The PTY size the gateway last announced to the terminal. */
  announcedSize(): Size | null;
  /** Starts recording the terminal's size changes and the PTY sizes announced to it. */
  recordTerminalSizes(): void;
  recordedTerminalSizes(): { resizes: Size[]; announced: Size[] };
  terminalState(): string | null;
  openSessionIds(): string[];
}

export function activeSessionId(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as { __dispatch?: Hooks }).__dispatch?.activeSessionId() ?? null);
}

export function bufferText(page: Page): Promise<string> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.bufferText());
}

export function terminalSize(page: Page): Promise<Size | null> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.terminalSize());
}

/** What `recordTerminalSizes` recorded. */
export function recordedTerminalSizes(page: Page): Promise<{ resizes: Size[]; announced: Size[] }> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.recordedTerminalSizes());
}

/** The terminal's size, the size that fills its area and the PTY size last announced to it. */
export function terminalSizes(page: Page): Promise<{ terminal: Size | null; fitted: Size | null; announced: Size | null }> {
  return page.evaluate(() => {
    const hooks = (window as unknown as { __dispatch: Hooks }).__dispatch;
    return { terminal: hooks.terminalSize(), fitted: hooks.fittedSize(), announced: hooks.announcedSize() };
  });
}

/**
 * Waits until the active terminal has the size that fills its area (the
 * layout and the font settled and fitted), smaller than `than` in both
 * dimensions if given; returns that size.
 */
export async function waitForFittedSize(page: Page, than: Size | null = null, timeout = 20_000): Promise<Size> {
  const handle = await page
    .waitForFunction(
      (than) => {
        const hooks = (window as unknown as { __dispatch: Hooks }).__dispatch;
        const size = hooks.terminalSize();
        const fitted = hooks.fittedSize();
        if (!size || !fitted || size.cols !== fitted.cols || size.rows !== fitted.rows) return null;
        if (than && !(size.cols < than.cols && size.rows < than.rows)) return null;
        return size;
      },
      than,
      { timeout },
    )
    .catch(async (error: Error) => {
      const sizes = await terminalSizes(page);
      throw new Error(
        `${error.message}\nwanted the fitted size${than ? `, smaller than ${than.cols}x${than.rows}` : ''}; ` +
          `terminal ${JSON.stringify(sizes.terminal)}, fitted ${JSON.stringify(sizes.fitted)}, announced ${JSON.stringify(sizes.announced)}`,
      );
    });
  return (await handle.jsonValue()) as Size;
}

/**
 * Runs `stty size` in the active terminal (its output prefixed with
 * `label=`, after a clear) and returns the PTY's size.
 */
export async function sttySize(page: Page, label: string): Promise<Size> {
  await run(page, `clear; echo ${label}=$(stty size)`);
  const match = await waitForBuffer(page, new RegExp(`^${label}=(\\d+) (\\d+)$`, 'm'));
  return { cols: Number(match[2]), rows: Number(match[1]) };
}

/** Asserts that the PTY has `expected`, the size the terminal had; the message tells every size and the screen. */
export async function assertPtySize(page: Page, pty: Size, expected: Size, message: string): Promise<void> {
  if (pty.cols === expected.cols && pty.rows === expected.rows) return;
  const sizes = await terminalSizes(page);
  assert.fail(
    `${message}: stty size says ${pty.cols}x${pty.rows}, the terminal had ${expected.cols}x${expected.rows} ` +
      `(now: terminal ${JSON.stringify(sizes.terminal)}, fitted ${JSON.stringify(sizes.fitted)}, ` +
      `announced ${JSON.stringify(sizes.announced)})\nterminal buffer:\n${await bufferText(page)}`,
  );
}

export function terminalState(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.terminalState());
}

/** Waits until the active terminal's buffer matches `pattern`; returns the match. */
export async function waitForBuffer(page: Page, pattern: RegExp, timeout = 20_000): Promise<RegExpExecArray> {
  // The text that matched comes back from the same read: a reattach's reset
  // and replay may empty the buffer for a moment right after.
  const handle = await page
    .waitForFunction(
      ({ source, flags }) => {
        const text = (window as unknown as { __dispatch: Hooks }).__dispatch.bufferText();
        return new RegExp(source, flags).test(text) ? text : null;
      },
      { source: pattern.source, flags: pattern.flags },
      { timeout, polling: 100 },
    )
    .catch(async (error: Error) => {
      throw new Error(`${error.message}\nterminal buffer:\n${await bufferText(page)}`);
    });
  const text = (await handle.jsonValue()) as string;
  const match = new RegExp(pattern.source, pattern.flags.replace('g', '')).exec(text);
  if (!match) throw new Error(`buffer matched ${pattern} in the page but not here`);
  return match;
}

/** Waits for a shell prompt (the buffer has a line ending in `$ ` or `# `). */
export async function waitForPrompt(page: Page): Promise<void> {
  await waitForBuffer(page, /[$#] ?$/m);
}

/** Types a command into the active terminal and presses Enter. */
export async function run(page: Page, command: string): Promise<void> {
  await page.getByTestId('terminal').click();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

export function ensureArtifacts(): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}

/** A TCP proxy in front of a gateway whose network the test can cut. */
export interface NetworkProxy {
  /** `http://127.0.0.1:<port>`, the address the browser uses. */
  url: string;
  /** Drops every open connection and refuses new ones, as a lost network does. */
  cut(): void;
  /**
   * Stops every byte in both directions without closing anything, as a
   * network that drops silently does; new connections hang too.
   */
  stall(): void;
  /** Lets connections through again (stalled ones resume). */
  restore(): void;
  close(): Promise<void>;
}

/** Starts a proxy on an ephemeral loopback port forwarding to `target` (`http://host:port`). */
export async function startProxy(target: string): Promise<NetworkProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let down = false;
  let stalled = false;
  const held: Socket[] = [];
  const forward = (client: Socket) => {
    const upstream = connect(Number(port), hostname);
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    if (stalled) {
      client.pause();
      upstream.pause();
    }
  };
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    if (stalled) {
      client.pause();
      held.push(client);
      return;
    }
    forward(client);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('proxy has no port');
  const cut = (): void => {
    down = true;
    for (const socket of [...open, ...held.splice(0)]) socket.destroy();
    open.clear();
  };
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut,
    stall() {
      stalled = true;
      for (const socket of open) socket.pause();
    },
    restore() {
      down = false;
      stalled = false;
      for (const socket of open) socket.resume();
      for (const client of held.splice(0)) {
        if (!client.destroyed) forward(client);
      }
    },
    async close() {
      cut();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  };
}

/** The page coordinates of the centre of the active terminal's cell at `row` (of the screen) and `col`. */
export async function cellCenter(page: Page, row: number, col: number): Promise<{ x: number; y: number }> {
  return page.evaluate(
    ({ row, col }) => {
      const hooks = (window as unknown as { __dispatch: Hooks }).__dispatch;
      const size = hooks.terminalSize();
      const screen = document.querySelector('.pane:not([hidden]) .xterm-screen');
      if (!size || !screen) throw new Error('no terminal on screen');
      const box = screen.getBoundingClientRect();
      const width = box.width / size.cols;
      const height = box.height / size.rows;
      return { x: box.left + (col + 0.5) * width, y: box.top + (row + 0.5) * height };
    },
    { row, col },
  );
}

/** The screen row (0-based) of the first visible line matching `pattern`. */
export async function screenRow(page: Page, pattern: RegExp): Promise<number> {
  const lines = (await page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.screenText())).split('\n');
  const row = lines.findIndex((line) => pattern.test(line));
  if (row < 0) throw new Error(`no line matching ${pattern} on the screen:\n${lines.join('\n')}`);
  return row;
}

/** The active terminal's cursor position in its buffer. */
export function cursor(page: Page): Promise<{ x: number; y: number }> {
  return page.evaluate(() => {
    const view = (window as unknown as { __dispatch: { viewport(): { cursorX: number; cursorY: number } } }).__dispatch.viewport();
    return { x: view.cursorX, y: view.cursorY };
  });
}

/** The text of the `connection-status` pill and its `data-state`. */
export async function connectionStatus(page: Page): Promise<{ state: string | null; label: string }> {
  const status = page.getByTestId('connection-status');
  return { state: await status.getAttribute('data-state'), label: ((await status.textContent()) ?? '').trim() };
}

/** Waits until `connection-status` has `data-state` = `state`. */
export async function waitForStatus(page: Page, state: string, timeout = 20_000): Promise<void> {
  await page
    .waitForFunction((state) => document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === state, state, {
      timeout,
    })
    .catch(async (error: Error) => {
      throw new Error(`${error.message}\nwanted ${state}, status is ${JSON.stringify(await connectionStatus(page))}`);
    });
}
