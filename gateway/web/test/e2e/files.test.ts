// End-to-end test of session files in Chromium against a real gateway and
// broker: the toolbar's files panel lists the session's folder; files are
// uploaded by the Upload button, by the phone's photo input, by dropping
// them on the terminal and by pasting an image into it (each written to the
// session's directory, its path typed at the prompt); a file and a folder
// download (playwright's download event) and text and images preview.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createSession, ensureArtifacts, launchBrowser, login, newContext, startGateway, waitForBuffer, type Gateway } from './harness';

const TEST = { timeout: 120_000 };
/** A 1x1 red PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
  'base64',
);

function row(page: Page, name: string) {
  return page.locator(`[data-testid="files-row"][data-name="${name}"]`);
}

describe('files', { timeout: 300_000 }, () => {
  let gateway: Gateway;
  let browser: Browser;
  let page: Page;
  let dir: string;
  const errors: string[] = [];

  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
    const context = await newContext(browser, { acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`);
    });
    await login(page, gateway.url);
    const id = await createSession(page, 'files');
    dir = await page.evaluate(async (id) => (await (await fetch(`/api/sessions/${id}`)).json()).cwd as string, id);
  });

  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test('upload by button and photo input, list, preview and download', TEST, async () => {
    await page.getByTestId('files-toggle').click();
    const panel = page.getByTestId('files-panel');
    await panel.waitFor();
    await page.getByTestId('files-upload-input').setInputFiles({
      name: 'button.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('from the button\n'),
    });
    await row(page, 'button.txt').waitFor();
    assert.equal(await readFile(join(dir, 'button.txt'), 'utf8'), 'from the button\n');
    assert.equal((await row(page, 'button.txt').getByTestId('files-size').textContent())?.trim(), '16 B');
    // The option is on by default: the path was typed at the prompt.
    await waitForBuffer(page, new RegExp(`${join(dir, 'button.txt').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} *$`, 'm'));

    // The phone's photo input takes images.
    assert.equal(await page.getByTestId('files-photo-input').getAttribute('accept'), 'image/*');
    await page.getByTestId('files-photo-input').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: PNG });
    await row(page, 'photo.png').waitFor();
    assert.deepEqual(await readFile(join(dir, 'photo.png')), PNG);

    // Uploading the same name again keeps both.
    await page.getByTestId('files-upload-input').setInputFiles({ name: 'button.txt', mimeType: 'text/plain', buffer: Buffer.from('second') });
    await row(page, 'button (1).txt').waitFor();
    assert.equal(await readFile(join(dir, 'button (1).txt'), 'utf8'), 'second');

    // Previews: text and image.
    await row(page, 'button.txt').locator('.files-name').click();
    await page.getByTestId('files-preview-text').filter({ hasText: 'from the button' }).waitFor();
    await row(page, 'photo.png').locator('.files-name').click();
    const image = page.getByTestId('files-preview-image');
    await image.waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector('[data-testid="files-preview-image"]') as HTMLImageElement | null;
      return img?.complete && img.naturalWidth === 1;
    });

    // Downloads: a file, then the folder as a tar archive.
    const [file] = await Promise.all([page.waitForEvent('download'), row(page, 'button.txt').getByTestId('files-download').click()]);
    assert.equal(file.suggestedFilename(), 'button.txt');
    assert.equal(await readFile((await file.path())!, 'utf8'), 'from the button\n');
    const [folder] = await Promise.all([page.waitForEvent('download'), page.getByTestId('files-download-folder').click()]);
    assert.match(folder.suggestedFilename(), /\.tar$/);
    const archive = await readFile((await folder.path())!);
    assert.ok(archive.includes(Buffer.from('from the button')), 'the archive holds the file');
    await page.screenshot({ path: join(ensureArtifacts(), 'files-panel.png') });
    assert.deepEqual(errors, []);
  });

  test('files dropped on the terminal are uploaded, a large one with its progress shown', TEST, async () => {
    // Every text of the progress strip, recorded as it changes.
    await page.evaluate(() => {
      const label = document.querySelector('[data-testid="files-upload-label"]')!;
      const seen: string[] = [];
      (window as unknown as { uploadLabels: string[] }).uploadLabels = seen;
      new MutationObserver(() => seen.push(label.textContent ?? '')).observe(label, { childList: true, characterData: true, subtree: true });
    });
    await page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['dropped on the terminal'], 'dropped.txt', { type: 'text/plain' }));
      transfer.items.add(new File([new Uint8Array(48 << 20).fill(7)], 'large.bin', { type: 'application/octet-stream' }));
      const target = document.querySelector('[data-testid="terminal"] .xterm') ?? document.querySelector('[data-testid="terminal"]')!;
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    await row(page, 'dropped.txt').waitFor();
    assert.equal(await readFile(join(dir, 'dropped.txt'), 'utf8'), 'dropped on the terminal');
    await row(page, 'large.bin').waitFor({ timeout: 60_000 });
    assert.equal((await stat(join(dir, 'large.bin'))).size, 48 << 20);
    await page.getByTestId('files-uploads').waitFor({ state: 'hidden' });
    const labels = await page.evaluate(() => (window as unknown as { uploadLabels: string[] }).uploadLabels);
    const partial = labels.filter((text) => /^Uploading large\.bin: .+ of 48 MiB$/.test(text) && !text.includes(': 48 MiB of'));
    assert.ok(partial.length > 0, `the strip showed the upload under way: ${JSON.stringify(labels)}`);
    await waitForBuffer(page, /large\.bin *$/m);
    assert.deepEqual(errors, []);
  });

  test('an image pasted into the terminal is uploaded as pasted-<time>.png', TEST, async () => {
    await page.evaluate((bytes) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], 'image.png', { type: 'image/png' }));
      const target = document.querySelector('[data-testid="terminal"] textarea') ?? document.querySelector('[data-testid="terminal"]')!;
      target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
    }, [...PNG]);
    const pasted = page.locator('[data-testid="files-row"][data-name^="pasted-"]');
    await pasted.waitFor();
    const name = (await pasted.getAttribute('data-name'))!;
    assert.match(name, /^pasted-\d{8}-\d{6}\.png$/);
    assert.deepEqual(await readFile(join(dir, name)), PNG);
    await waitForBuffer(page, new RegExp(`${name.replace('.', '\\.')} *$`, 'm'));
    assert.deepEqual(errors, []);
  });

  test('on a phone, a photo is attached from the panel', TEST, async () => {
    const phone = await newContext(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const small = await phone.newPage();
    await login(small, gateway.url);
    const id = await createSession(small, 'phone files');
    const cwd = await small.evaluate(async (id) => (await (await fetch(`/api/sessions/${id}`)).json()).cwd as string, id);
    await small.getByTestId('files-toggle').click();
    await small.getByTestId('files-panel').waitFor();
    await small.getByTestId('files-photo-input').setInputFiles({ name: 'screenshot.png', mimeType: 'image/png', buffer: PNG });
    await small.locator('[data-testid="files-row"][data-name="screenshot.png"]').waitFor();
    assert.deepEqual(await readFile(join(cwd, 'screenshot.png')), PNG);
    await small.screenshot({ path: join(ensureArtifacts(), 'files-panel-phone.png') });
    await phone.close();
  });
});
