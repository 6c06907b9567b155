// Starts a real dispatch-gateway (which starts its own broker child) on an
// ephemeral port with a temporary PTY_ROOT and a test key, and drives Debian's
// Chromium with playwright-core.
import { spawn, type ChildProcess } from 'node:child_process';
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

/**
 * Starts the gateway with a broker child; resolves once /readyz answers 200.
 * With `DISPATCH_E2E_URL` set, uses that running gateway instead.
 */
export async function startGateway(options: { env?: Record<string, string>; ready?: boolean } = {}): Promise<Gateway> {
  const external = process.env.DISPATCH_E2E_URL;
  if (external && !options.env) {
    return { url: external.replace(/\/$/, ''), process: null, output: () => '', stop: async () => {} };
  }
  const ptyRoot = mkdtempSync(join(tmpdir(), 'dispatch-e2e-'));
  // The shells start in an empty home: no dotfiles of the machine's user.
  const home = mkdtempSync(join(tmpdir(), 'dispatch-e2e-home-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C.UTF-8',
    HOST: '127.0.0.1',
    PORT: '0',
    TERMINAL_KEY: KEY,
    PTY_ROOT: ptyRoot,
    PTY_MODE: 'shell',
    SHELL: '/bin/bash',
    BROKER_BIN: binary('dispatch-broker'),
    RUST_LOG: process.env.RUST_LOG ?? 'info',
    ...options.env,
  };
  const child = spawn(binary('dispatch-gateway'), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));

  const url = await new Promise<string>((resolveUrl, reject) => {
    const deadline = setTimeout(() => reject(new Error(`gateway did not report its address in 60 s:\n${output}`)), 60_000);
    const check = () => {
      const match = /listening on (http:\/\/[0-9.:\[\]]+)/.exec(output);
      if (match) {
        clearTimeout(deadline);
        resolveUrl(match[1]);
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`gateway exited with ${code}:\n${output}`));
    });
  });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (options.ready === false) break;
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`gateway not ready in 60 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    url,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(ptyRoot, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
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

/** Opens the app and logs in with `key`. */
export async function login(page: Page, url: string, key = KEY): Promise<void> {
  await page.goto(url);
  await page.getByTestId('login-key').fill(key);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('new-session').waitFor();
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

interface Hooks {
  activeSessionId(): string | null;
  bufferText(): string;
  screenText(): string;
  terminalSize(): { cols: number; rows: number } | null;
  terminalState(): string | null;
  openSessionIds(): string[];
}

export function activeSessionId(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as { __dispatch?: Hooks }).__dispatch?.activeSessionId() ?? null);
}

export function bufferText(page: Page): Promise<string> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.bufferText());
}

export function terminalSize(page: Page): Promise<{ cols: number; rows: number } | null> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.terminalSize());
}

export function terminalState(page: Page): Promise<string | null> {
  return page.evaluate(() => (window as unknown as { __dispatch: Hooks }).__dispatch.terminalState());
}

/** Waits until the active terminal's buffer matches `pattern`; returns the match. */
export async function waitForBuffer(page: Page, pattern: RegExp, timeout = 20_000): Promise<RegExpExecArray> {
  await page
    .waitForFunction(
      ({ source, flags }) => new RegExp(source, flags).test((window as unknown as { __dispatch: Hooks }).__dispatch.bufferText()),
      { source: pattern.source, flags: pattern.flags },
      { timeout, polling: 100 },
    )
    .catch(async (error: Error) => {
      throw new Error(`${error.message}\nterminal buffer:\n${await bufferText(page)}`);
    });
  const match = pattern.exec(await bufferText(page));
  if (!match) throw new Error(`buffer stopped matching ${pattern}`);
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
