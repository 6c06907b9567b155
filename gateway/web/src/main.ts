//! Entry point: checks the login, then shows either the login screen or the
//! app (header and views). Views are registered here; each owns a hash route
//! `#/<name>/...` (see app/router.ts).

import '@xterm/xterm/css/xterm.css';
import './styles/app.css';

import { auth } from './app/auth';
import { h } from './app/dom';
import { Router, type ViewDefinition } from './app/router';
import { Shell } from './app/shell';
import { toast } from './app/toast';
import { loginScreen } from './login/view';
import { terminalsView } from './terminals/view';
import { conversationsView } from './conversations/view';
import { usageView } from './usage/view';
import { SHARE_PATH, showSharePage } from './shares/page';

/** The app's views, in navigation order. The first is the default route. */
function views(shell: Shell): ViewDefinition[] {
  return [terminalsView(shell), conversationsView(shell), usageView()];
}

const root = document.getElementById('app') ?? document.body;
let router: Router | null = null;

function showApp(): void {
  if (router) return;
  const shell = new Shell(() => void logout());
  const definitions = views(shell);
  router = new Router(shell.outlet, definitions[0].name);
  for (const definition of definitions) router.register(definition);
  shell.setViews(router.registered);
  router.onRoute((route) => shell.setRoute(route));
  root.replaceChildren(shell.element);
  router.start();
}

function showLogin(notice?: string): void {
  router?.stop();
  router = null;
  document.title = 'Log in · dispatch';
  root.replaceChildren(loginScreen(showApp, notice));
}

async function logout(): Promise<void> {
  try {
    await auth.logout();
  } catch {
    toast('The server could not be told; you are logged out here.', 'error');
  }
}

function showUnreachable(): void {
  const retry = h('button', { class: 'button primary', text: 'Retry', attrs: { type: 'button' }, on: { click: () => void start() } });
  root.replaceChildren(
    h(
      'main',
      { class: 'login-screen' },
      h('div', { class: 'login-card' }, h('h1', { class: 'dialog-title', text: 'The server cannot be reached' }), h('p', { text: 'dispatch will try again in a few seconds.' }), retry),
    ),
  );
  setTimeout(() => void start(), 5000);
}

/** Keeps the layout above the soft keyboard on phones. */
function followVisualViewport(): void {
  const viewport = window.visualViewport;
  if (!viewport) return;
  const update = (): void => {
    document.documentElement.style.setProperty('--app-height', `${Math.round(viewport.height)}px`);
    if (window.scrollY !== 0) window.scrollTo(0, 0);
  };
  viewport.addEventListener('resize', update);
  update();
}

let starting = false;
async function start(): Promise<void> {
  if (starting) return;
  starting = true;
  try {
    const state = await auth.check();
    if (state === 'in') showApp();
    else showLogin();
  } catch {
    showUnreachable();
  } finally {
    starting = false;
  }
}

auth.onChange((state) => {
  if (state === 'out') showLogin(router ? 'You have been logged out.' : undefined);
  else if (state === 'in') showApp();
});
followVisualViewport();
// A share link's page is the shared terminal alone, with no login.
if (location.pathname === SHARE_PATH) showSharePage(root);
else void start();
