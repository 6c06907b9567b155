//! The login screen: one key field. Tells a wrong key, rate limiting and an
//! unreachable server apart.

import { ApiError } from '../app/api';
import { auth } from '../app/auth';
import { h, icon } from '../app/dom';

function describeLoginError(error: unknown): string {
  if (!(error instanceof ApiError)) return 'Login failed. Please try again.';
  switch (error.status) {
    case 0:
      return 'The server cannot be reached. Check your connection and try again.';
    case 401:
      return 'Invalid key. Check it and try again.';
    case 429: {
      const wait = error.retryAfter;
      return wait
        ? `Too many attempts. Try again in ${wait} second${wait === 1 ? '' : 's'}.`
        : 'Too many attempts. Please wait a moment and try again.';
    }
    default:
      return `Login failed: ${error.message}`;
  }
}

/** Builds the login screen; `onLoggedIn` runs after a successful login. */
export function loginScreen(onLoggedIn: () => void, notice?: string): HTMLElement {
  const key = h('input', {
    class: 'input',
    testid: 'login-key',
    attrs: {
      id: 'login-key',
      type: 'password',
      name: 'key',
      autocomplete: 'current-password',
      required: true,
      autofocus: true,
      spellcheck: 'false',
      autocapitalize: 'off',
      placeholder: 'Terminal key',
    },
  });
  const error = h('p', { class: 'form-error', testid: 'login-error', attrs: { role: 'alert' } });
  error.hidden = true;
  const submit = h('button', { class: 'button primary wide', testid: 'login-submit', text: 'Log in', attrs: { type: 'submit' } });
  const info = notice ? h('p', { class: 'login-notice', text: notice }) : null;

  const form = h(
    'form',
    { class: 'login-card' },
    h('div', { class: 'login-brand' }, icon('terminal'), h('span', { text: 'dispatch' })),
    h('p', { class: 'login-intro', text: 'Log in with the terminal key of this server.' }),
    info,
    h('label', { class: 'field-label', text: 'Key', attrs: { for: 'login-key' } }),
    key,
    error,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!key.value) return;
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    error.hidden = true;
    try {
      await auth.login(key.value);
      key.value = '';
      onLoggedIn();
    } catch (failure) {
      error.textContent = describeLoginError(failure);
      error.hidden = false;
      key.select();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Log in';
    }
  });

  const screen = h('main', { class: 'login-screen' }, form);
  requestAnimationFrame(() => key.focus());
  return screen;
}
