//! Web Push on this device: registers the service worker (`/sw.js`, see
//! worker/service-worker.ts), subscribes with the gateway's VAPID key and
//! hands the subscription to the gateway, which then pushes each time a
//! session needs its user, even with no dispatch page open (the installed
//! app on a phone included). Off until the user turns it on; the browser
//! asks for permission then, never at load. When the login ends (logout or
//! expiry) the browser drops its subscription: the push service then answers
//! the gateway 410 and the gateway forgets it, so a logged-out device learns
//! no more session names.

import type { PushKey } from '../generated/protocol';
import { request } from './api';
import { auth } from './auth';

/** The service worker's URL and scope, relative to the page (the root). */
export const WORKER_URL = 'sw.js';
const WORKER_SCOPE = './';

/** Whether this browser can receive Web Push at all. */
export function pushSupported(): boolean {
  return (
    typeof navigator !== 'undefined' &&
    'serviceWorker' in navigator &&
    typeof PushManager !== 'undefined' &&
    typeof Notification !== 'undefined' &&
    window.isSecureContext
  );
}

/** Bytes of a base64url text (the VAPID key). */
export function base64UrlBytes(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function registration(): Promise<ServiceWorkerRegistration> {
  await navigator.serviceWorker.register(WORKER_URL, { scope: WORKER_SCOPE, type: 'classic' });
  return navigator.serviceWorker.ready;
}

/** This browser's current push subscription, if it has one. */
export async function currentSubscription(): Promise<PushSubscription | null> {
  if (!pushSupported()) return null;
  const existing = await navigator.serviceWorker.getRegistration(WORKER_SCOPE);
  return (await existing?.pushManager.getSubscription()) ?? null;
}

/** Whether push is on here: permission granted and a subscription held. */
export async function pushEnabled(): Promise<boolean> {
  return Notification.permission === 'granted' && (await currentSubscription()) !== null;
}

/**
 * Turns push on (permission, worker, subscription with the gateway's key,
 * handed to the gateway) or off (the gateway forgets it, the browser drops
 * it). Resolves to whether push is on afterwards; throws with the reason
 * when turning on fails.
 */
export async function setPush(on: boolean): Promise<boolean> {
  if (!on) {
    const subscription = await currentSubscription();
    if (subscription) {
      await request('DELETE', '/api/push/subscriptions', { endpoint: subscription.endpoint }).catch(() => undefined);
      await subscription.unsubscribe();
    }
    return false;
  }
  const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
  if (permission !== 'granted') return false;
  const worker = await registration();
  const { publicKey } = await request<PushKey>('GET', '/api/push/key');
  const subscription = await subscribeWith(worker, base64UrlBytes(publicKey));
  await request('POST', '/api/push/subscriptions', subscription.toJSON());
  return true;
}

/**
 * A subscription under `key`, replacing one made with another key (which the
 * gateway forgets too: pushes signed with its new key would be refused).
 */
async function subscribeWith(worker: ServiceWorkerRegistration, key: Uint8Array<ArrayBuffer>): Promise<PushSubscription> {
  const existing = await worker.pushManager.getSubscription();
  if (existing && !sameKey(existing.options.applicationServerKey, key)) {
    await request('DELETE', '/api/push/subscriptions', { endpoint: existing.endpoint }).catch(() => undefined);
    await existing.unsubscribe();
  }
  return worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const bytes = new Uint8Array(a);
  return bytes.every((byte, i) => byte === b[i]);
}

/** Drops this browser's subscription (the cookie is gone, so the gateway cannot be told). */
async function dropSubscription(): Promise<void> {
  const subscription = await currentSubscription();
  await subscription?.unsubscribe();
}

auth.onChange((state) => {
  if (state === 'out') dropSubscription().catch(() => undefined);
});

/** Opens a session when the service worker says a notification was tapped. */
export function listenForOpenRequests(open: (sessionId: string) => void): void {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.addEventListener('message', (event: MessageEvent) => {
    const data = event.data as { type?: unknown; session?: unknown } | null;
    if (data?.type === 'open-session' && typeof data.session === 'string') open(data.session);
  });
}

/** The button that turns Web Push to this device on and off. */
export function pushToggle(): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button small';
  button.dataset.testid = 'push-toggle';
  const show = (on: boolean, problem?: string) => {
    button.textContent = on ? 'Pushing' : 'Push';
    button.setAttribute('aria-pressed', String(on));
    button.dataset.state = problem ? 'failed' : on ? 'on' : 'off';
    button.title =
      problem ??
      (on
        ? 'Push notifications to this device are on: you are told when a session needs you, even with dispatch closed'
        : 'Get a push notification on this device when a session needs you, even with dispatch closed');
  };
  if (!pushSupported()) {
    button.hidden = true;
    return button;
  }
  show(false);
  // Push on here: hand the subscription to the gateway again (it may have
  // lost it, or have a new key), with no prompt since permission is granted.
  pushEnabled()
    .then((on) => on && setPush(true))
    .then((on) => show(on))
    .catch(() => show(false));
  button.addEventListener('click', () => {
    const turnOn = button.getAttribute('aria-pressed') !== 'true';
    button.disabled = true;
    setPush(turnOn)
      .then((on) => show(on))
      .catch((error: unknown) => show(false, `Push could not be turned on: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => {
        button.disabled = false;
      });
  });
  return button;
}
