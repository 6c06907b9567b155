//! Read-only hooks for the browser tests, published as `window.__dispatch`
//! only when the page was opened with `localStorage['dispatch.testHooks'] = '1'`
//! (the tests set it; people never see it). Views add their own entries.

const STORAGE_KEY = 'dispatch.testHooks';

function enabled(): boolean {
  try {
    return localStorage.getItem(STORAGE_KEY) === '1';
  } catch {
    return false;
  }
}

/** Adds `hooks` to `window.__dispatch` when test hooks are enabled. */
export function exposeTestHooks(hooks: Record<string, unknown>): void {
  if (!enabled()) return;
  const target = window as unknown as { __dispatch?: Record<string, unknown> };
  target.__dispatch = Object.assign(target.__dispatch ?? {}, hooks);
}
