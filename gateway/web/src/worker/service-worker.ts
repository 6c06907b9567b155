//! The service worker, served at `/sw.js` (scope `/`): shows a notification
//! for each Web Push the gateway sends when a session needs its user (the
//! payload names the session and the reason, nothing from its terminal), and
//! on a tap focuses an open dispatch page on that session or opens one.

import { attentionText } from '../app/reasons';
import type { PushMessage } from '../generated/protocol';

interface WindowClientLike {
  url: string;
  focus(): Promise<unknown>;
  postMessage(message: unknown): void;
}

interface ExtendableEventLike extends Event {
  waitUntil(promise: Promise<unknown>): void;
}

interface PushEventLike extends ExtendableEventLike {
  data: { json(): unknown } | null;
}

interface NotificationEventLike extends ExtendableEventLike {
  notification: Notification & { data?: unknown };
}

/** The parts of `ServiceWorkerGlobalScope` used here. */
interface WorkerScope {
  registration: ServiceWorkerRegistration;
  clients: {
    matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<unknown>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEventLike) => void): void;
  addEventListener(type: 'push', listener: (event: PushEventLike) => void): void;
  addEventListener(type: 'notificationclick', listener: (event: NotificationEventLike) => void): void;
}

const worker = self as unknown as WorkerScope;

function parse(data: PushEventLike['data']): PushMessage | null {
  try {
    const message = data?.json() as Partial<PushMessage> | undefined;
    if (typeof message?.session !== 'string' || typeof message.reason !== 'string') return null;
    return { session: message.session, name: typeof message.name === 'string' ? message.name : '', reason: message.reason };
  } catch {
    return null;
  }
}

/** The page URL of a session. */
function sessionUrl(session: string): string {
  return new URL(`./#/terminals/${encodeURIComponent(session)}`, worker.registration.scope).href;
}

async function open(session: string): Promise<void> {
  const pages = await worker.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const page = pages[0];
  if (page) {
    page.postMessage({ type: 'open-session', session });
    await page.focus().catch(() => undefined);
    return;
  }
  await worker.clients.openWindow(sessionUrl(session));
}

worker.addEventListener('install', (event) => event.waitUntil(worker.skipWaiting()));
worker.addEventListener('activate', (event) => event.waitUntil(worker.clients.claim()));

worker.addEventListener('push', (event) => {
  const message = parse(event.data);
  const title = message ? `${message.name || 'A session'} ${attentionText(message.reason)}` : 'A session needs you';
  event.waitUntil(
    worker.registration.showNotification(title, {
      body: 'Tap to answer it in dispatch.',
      tag: message ? `dispatch-${message.session}` : 'dispatch',
      icon: 'icon.svg',
      data: { session: message?.session ?? null },
    }),
  );
});

worker.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const session = (event.notification.data as { session?: unknown } | undefined)?.session;
  event.waitUntil(typeof session === 'string' ? open(session) : worker.clients.openWindow(worker.registration.scope));
});
