// Web Push in a real browser against a real gateway and broker. Debian's
// headless Chromium has a PushManager but no push service behind it: its
// `subscribe()` fails with "AbortError: Registration failed - permission
// denied" even with the permission granted. So the test checks what the
// browser does itself (the service worker served at /sw.js and registered
// over the whole site, the permission asked on the click and not at load,
// `subscribe()` called with the gateway's VAPID key, the browser's failure
// shown on the toggle), then stands in for the browser's push service only:
// `subscribe()` answers a subscription whose keys the test made and whose
// endpoint is a stand-in push service on loopback. The gateway stores it,
// a session that needs its user makes the gateway push, and the test
// decrypts the push (RFC 8291) with the subscription's keys and finds the
// session's name and the reason. The same payload handed to the service
// worker (DevTools' deliverPushMessage) shows a notification, tapping it
// opens that session in the page, and logging out drops the subscription.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createDecipheriv, createHmac, randomBytes, type ECDH } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createSession, launchBrowser, login, newContext, run, startGateway, type Gateway } from './harness';

const TEST = { timeout: 120_000 };

/** What the stand-in push service received. */
interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A push service on loopback that accepts every push with 201. */
async function startPushService(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(201).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

/** A browser's side of a subscription: its P-256 key pair and auth secret. */
interface Subscriber {
  ecdh: ECDH;
  auth: Buffer;
}

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** Decrypts an `aes128gcm` push (RFC 8291, RFC 8188) with the subscriber's keys. */
function decrypt(subscriber: Subscriber, body: Buffer): string {
  const salt = body.subarray(0, 16);
  const idLength = body[20]!;
  const serverKey = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);
  const shared = subscriber.ecdh.computeSecret(serverKey);
  const info = Buffer.concat([Buffer.from('WebPush: info\0'), subscriber.ecdh.getPublicKey(), serverKey]);
  const ikm = hmac(hmac(subscriber.auth, shared), Buffer.concat([info, Buffer.from([1])]));
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from('Content-Encoding: aes128gcm\0\x01')).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from('Content-Encoding: nonce\0\x01')).subarray(0, 12);
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end > 0 && padded[end] === 0) end--;
  assert.equal(padded[end], 2, 'the last record ends with the 0x02 delimiter');
  return padded.subarray(0, end).toString('utf8');
}

async function waitFor<T>(what: string, check: () => T | undefined | null | false, timeout = 30_000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function servedKey(page: Page): Promise<string> {
  return page.evaluate(async () => ((await (await fetch('/api/push/key')).json()) as { publicKey: string }).publicKey);
}

describe('web push', () => {
  let gateway: Gateway;
  let browser: Browser;
  let push: Awaited<ReturnType<typeof startPushService>>;

  before(async () => {
    push = await startPushService();
    gateway = await startGateway({
      env: { PUSH_ALLOW_PRIVATE_ENDPOINTS: 'true', NOTIFY_QUIET_AFTER_INPUT_SECS: '1', NOTIFY_MIN_INTERVAL_SECS: '0' },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
    push?.server.close();
  });

  test('the service worker is served for the whole site and the real subscribe is tried with the gateway key', TEST, async () => {
    const context = await newContext(browser);
    // Records permission requests and subscribe() calls from the first script on.
    await context.addInitScript(() => {
      const calls: string[] = [];
      (window as unknown as { __asked: string[] }).__asked = calls;
      const ask = Notification.requestPermission.bind(Notification);
      Notification.requestPermission = () => {
        calls.push('asked');
        return ask();
      };
      const subscribe = PushManager.prototype.subscribe;
      PushManager.prototype.subscribe = function (options?: PushSubscriptionOptionsInit) {
        const key = new Uint8Array(options!.applicationServerKey as Uint8Array);
        calls.push(btoa(String.fromCharCode(...key)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
        return subscribe.call(this, options);
      };
    });
    const page = await context.newPage();
    await login(page, gateway.url);
    const worker = await page.evaluate(async () => {
      const response = await fetch('/sw.js');
      return { status: response.status, type: response.headers.get('content-type'), allowed: response.headers.get('service-worker-allowed') };
    });
    assert.equal(worker.status, 200);
    assert.match(worker.type ?? '', /javascript/);
    assert.equal(worker.allowed, '/');
    // Nothing is asked at load.
    assert.equal(await page.evaluate(() => Notification.permission), 'default');
    const calls = () => page.evaluate(() => (window as unknown as { __asked: string[] }).__asked);
    assert.deepEqual(await calls(), []);
    const toggle = page.getByTestId('push-toggle');
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
    // The click asks; refused (no grant in this context), push stays off.
    await toggle.click();
    await page.waitForFunction(() => (window as unknown as { __asked: string[] }).__asked.length > 0);
    await page.waitForFunction(() => !document.querySelector<HTMLButtonElement>('[data-testid="push-toggle"]')?.disabled);
    assert.deepEqual(await calls(), ['asked']);
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
    // Granted, the next click subscribes with the gateway's key.
    await context.grantPermissions(['notifications'], { origin: gateway.url });
    await toggle.click();
    await page.waitForFunction(() => {
      const state = document.querySelector('[data-testid="push-toggle"]')?.getAttribute('data-state');
      return state === 'on' || state === 'failed';
    });
    assert.deepEqual(await calls(), ['asked', await servedKey(page)], 'subscribe() called with the served key');
    const registration = await page.evaluate(async () => {
      const found = await navigator.serviceWorker.getRegistration('/');
      return { scope: found?.scope, script: found?.active?.scriptURL };
    });
    assert.equal(registration.scope, `${gateway.url}/`);
    assert.equal(registration.script, `${gateway.url}/sw.js`);
    if ((await toggle.getAttribute('data-state')) === 'failed') {
      // The browser's own push service refused: the reason is on the toggle.
      assert.match((await toggle.getAttribute('title')) ?? '', /Push could not be turned on: .*Registration failed/);
      assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
    } else {
      // A browser with a push service: the gateway holds its subscription.
      const endpoint = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).pushManager.getSubscription())?.endpoint);
      const removed = await page.evaluate(
        async (endpoint) => (await fetch('/api/push/subscriptions', { method: 'DELETE', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ endpoint }) })).status,
        endpoint,
      );
      assert.equal(removed, 204);
    }
    await context.close();
  });

  test('a subscription made in the page is stored, pushed to encrypted, and its notification opens the session', TEST, async () => {
    const subscriber: Subscriber = { ecdh: createECDH('prime256v1'), auth: randomBytes(16) };
    subscriber.ecdh.generateKeys();
    const endpoint = `${push.url}/push/${randomBytes(8).toString('hex')}`;
    const context: BrowserContext = await newContext(browser);
    await context.grantPermissions(['notifications'], { origin: gateway.url });
    // The browser's push service, stood in for: subscribe() answers the test's subscription.
    await context.addInitScript(
      ({ endpoint, p256dh, auth }) => {
        // Held across reloads, as a browser keeps its subscription.
        const STORED = 'test.push-subscription-key';
        const keys: string[] = [];
        (window as unknown as { __subscribeKeys: string[] }).__subscribeKeys = keys;
        const make = (key: Uint8Array) =>
          ({
            endpoint,
            expirationTime: null,
            options: { userVisibleOnly: true, applicationServerKey: key.buffer },
            getKey: () => null,
            toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
            unsubscribe: async () => {
              localStorage.removeItem(STORED);
              (window as unknown as { __unsubscribed: boolean }).__unsubscribed = true;
              return true;
            },
          }) as unknown as PushSubscription;
        PushManager.prototype.subscribe = async function (options?: PushSubscriptionOptionsInit) {
          const key = new Uint8Array(options!.applicationServerKey as Uint8Array);
          keys.push(btoa(String.fromCharCode(...key)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
          localStorage.setItem(STORED, JSON.stringify([...key]));
          return make(key);
        };
        PushManager.prototype.getSubscription = async () => {
          const stored = localStorage.getItem(STORED);
          return stored ? make(Uint8Array.from(JSON.parse(stored) as number[])) : null;
        };
      },
      { endpoint, p256dh: subscriber.ecdh.getPublicKey().toString('base64url'), auth: subscriber.auth.toString('base64url') },
    );
    const page = await context.newPage();
    await login(page, gateway.url);
    const toggle = page.getByTestId('push-toggle');
    await toggle.click();
    await page.waitForFunction(() => document.querySelector('[data-testid="push-toggle"]')?.getAttribute('aria-pressed') === 'true');
    const key = await servedKey(page);
    assert.deepEqual(await page.evaluate(() => (window as unknown as { __subscribeKeys: string[] }).__subscribeKeys), [key]);

    // A gateway that lost the subscription gets it again at the next load.
    const forget = () =>
      page.evaluate(
        async (endpoint) => (await fetch('/api/push/subscriptions', { method: 'DELETE', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ endpoint }) })).status,
        endpoint,
      );
    assert.equal(await forget(), 204);
    assert.equal(await forget(), 404);
    await page.reload();
    await page.waitForFunction(() => document.querySelector('[data-testid="push-toggle"]')?.getAttribute('aria-pressed') === 'true');
    assert.equal(await forget(), 204, 'stored again');
    await page.reload();
    await page.waitForFunction(() => document.querySelector('[data-testid="push-toggle"]')?.getAttribute('aria-pressed') === 'true');

    const id = await createSession(page, 'pushed-session');
    await run(page, "sleep 2; printf '\\033]777;notify;secret-title;secret-body\\007'");
    const received = await waitFor('a push at the stand-in', () => push.received.find((p) => p.path === new URL(endpoint).pathname));
    assert.equal(received.headers['content-encoding'], 'aes128gcm');
    assert.match(String(received.headers.authorization), new RegExp(`^vapid t=[\\w-]+\\.[\\w-]+\\.[\\w-]+, k=${key}$`));
    const payload = decrypt(subscriber, received.body);
    assert.deepEqual(JSON.parse(payload), { session: id, name: 'pushed-session', reason: 'notification' });
    assert.doesNotMatch(payload, /secret/);

    // The push as the browser would hand it to the service worker.
    const cdp = await context.newCDPSession(page);
    const registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
    await cdp.send('ServiceWorker.enable');
    const registration = await waitFor('the service worker registration', () => registrations.find((r) => r.scopeURL === `${gateway.url}/` && !r.isDeleted));
    // Elsewhere in the app when the notification comes.
    await page.evaluate(() => {
      location.hash = '#/conversations';
    });
    await page.waitForFunction(() => location.hash === '#/conversations');
    // Delivered again while none shows: a push that reaches a worker still
    // starting up can be dropped; the same tag replaces, never doubles.
    const deliver = () => cdp.send('ServiceWorker.deliverPushMessage', { origin: gateway.url, registrationId: registration.registrationId, data: payload });
    await deliver();
    const notifications = () =>
      page.evaluate(async () => {
        const shown = await (await navigator.serviceWorker.ready).getNotifications();
        return shown.map((n) => ({ title: n.title, tag: n.tag, data: n.data as unknown }));
      });
    let shown = await notifications();
    for (let tries = 1; shown.length === 0 && tries <= 200; tries++, shown = await notifications()) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (tries % 30 === 0) await deliver();
    }
    assert.deepEqual(shown, [{ title: 'pushed-session sent a notification', tag: `dispatch-${id}`, data: { session: id } }]);
    // A tap on it (dispatched in the worker) shows the session in the open page.
    const worker = context.serviceWorkers().find((w) => w.url() === `${gateway.url}/sw.js`);
    assert.ok(worker, 'the service worker runs');
    await worker.evaluate(async () => {
      const scope = self as unknown as { registration: ServiceWorkerRegistration; dispatchEvent(event: Event): boolean };
      const [notification] = await scope.registration.getNotifications();
      const NotificationEventClass = (globalThis as unknown as { NotificationEvent: new (type: string, init: { notification: Notification }) => Event }).NotificationEvent;
      try {
        scope.dispatchEvent(new NotificationEventClass('notificationclick', { notification: notification! }));
      } catch {
        // waitUntil refuses an untrusted event, after the handler started.
      }
    });
    await page.waitForFunction((id) => location.hash === `#/terminals/${id}`, id);
    // Logging out drops this browser's subscription (its push service then
    // answers the gateway 410, which forgets it).
    await page.getByTestId('logout').click();
    await page.waitForFunction(() => (window as unknown as { __unsubscribed?: boolean }).__unsubscribed === true);
    await context.close();
  });
});
