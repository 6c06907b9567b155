//! The files panel of the terminals view: the active session's folder (its
//! folders and files with sizes and times), navigation into folders and
//! back, downloads of a file or of a folder as a tar archive, previews of
//! text (the first 256 KiB) and images, and the upload buttons (any files,
//! or a photo/screenshot on a phone).

import { ApiError } from '../app/api';
import { h } from '../app/dom';
import { absoluteTime, relativeTime } from '../app/format';
import { type FileEntry, type FileList, filesApi, joinPath, parentPath } from './api';
import { fileSize, isImageName } from './format';

/** Bytes of a text file shown in its preview. */
const PREVIEW_BYTES = 256 * 1024;

export interface PanelActions {
  /** Upload these files into `folder`. */
  upload(files: File[], folder: string): void;
  closed(): void;
}

export class FilesPanel {
  readonly element: HTMLElement;
  private readonly crumbs = h('span', { class: 'files-path', testid: 'files-path' });
  private readonly body = h('div', { class: 'files-body' });
  private readonly preview = h('div', { class: 'files-preview', testid: 'files-preview' });
  private readonly folderDownload: HTMLAnchorElement;
  readonly typePath: HTMLInputElement;
  private sessionId: string | null = null;
  private folder = '';
  /** Answers to requests sent before the last change are dropped. */
  private generation = 0;

  constructor(private readonly actions: PanelActions) {
    const picker = this.picker('files-upload-input', '');
    const photo = this.picker('files-photo-input', 'image/*');
    this.folderDownload = h('a', { class: 'button small', testid: 'files-download-folder', text: 'Download folder' });
    this.typePath = h('input', { testid: 'files-type-path', attrs: { type: 'checkbox' } });
    this.typePath.checked = localStorage.getItem('dispatch.files.typePath') !== 'false';
    this.typePath.addEventListener('change', () => localStorage.setItem('dispatch.files.typePath', String(this.typePath.checked)));
    const button = (text: string, testid: string, click: () => void) =>
      h('button', { class: 'button small', testid, text, attrs: { type: 'button' }, on: { click } });
    this.element = h(
      'section',
      { class: 'files-panel', testid: 'files-panel', attrs: { 'aria-label': 'Files of this session' } },
      h(
        'div',
        { class: 'files-head' },
        h('h3', { text: 'Files' }),
        this.crumbs,
        button('Upload', 'files-upload', () => picker.click()),
        button('Photo', 'files-photo', () => photo.click()),
        this.folderDownload,
        h('label', { class: 'files-option', title: 'Type an uploaded file’s path at the prompt' }, this.typePath, ' type path'),
        button('Refresh', 'files-refresh', () => void this.refresh()),
        button('Close', 'files-close', () => this.close()),
        picker,
        photo,
      ),
      this.body,
      this.preview,
    );
    this.element.hidden = true;
    this.preview.hidden = true;
  }

  /** A hidden file input whose choice is uploaded into the shown folder. */
  private picker(testid: string, accept: string): HTMLInputElement {
    const input = h('input', { testid, class: 'files-picker', attrs: { type: 'file', multiple: true, accept: accept || null } });
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      input.value = '';
      if (files.length) this.actions.upload(files, this.folder);
    });
    return input;
  }

  get open(): boolean {
    return !this.element.hidden;
  }

  /** The folder uploads from the terminal go to: the shown one while open. */
  get currentFolder(): string {
    return this.open ? this.folder : '';
  }

  get currentSession(): string | null {
    return this.sessionId;
  }

  toggle(sessionId: string | null): void {
    if (this.open || sessionId === null) {
      this.close();
      return;
    }
    this.element.hidden = false;
    this.sessionId = sessionId;
    this.navigate('');
  }

  /** The active session changed: an open panel follows it. */
  show(sessionId: string | null): void {
    if (sessionId === null) this.close();
    else if (this.open && sessionId !== this.sessionId) {
      this.sessionId = sessionId;
      this.navigate('');
    }
  }

  close(): void {
    if (this.element.hidden) return;
    this.element.hidden = true;
    this.actions.closed();
  }

  navigate(folder: string): void {
    this.folder = folder;
    this.preview.hidden = true;
    this.preview.replaceChildren();
    void this.refresh();
  }

  async refresh(): Promise<void> {
    const id = this.sessionId;
    if (!id || !this.open) return;
    this.generation += 1;
    const generation = this.generation;
    this.element.dataset.state = 'loading';
    try {
      const listing = await filesApi.list(id, this.folder);
      if (generation === this.generation) this.render(id, listing);
    } catch (error) {
      if (generation === this.generation) this.renderError(error);
    }
  }

  private render(sessionId: string, listing: FileList): void {
    this.element.dataset.state = 'ready';
    this.renderCrumbs(listing.path);
    const name = listing.path ? listing.path.slice(listing.path.lastIndexOf('/') + 1) : 'session';
    this.folderDownload.href = filesApi.contentUrl(sessionId, listing.path);
    this.folderDownload.download = `${name}.tar`;
    const now = Date.now();
    const rows = listing.entries.map((entry) => this.row(sessionId, entry, now));
    if (listing.path) rows.unshift(this.upRow(listing.path));
    const table = h('table', { class: 'files-table' }, h('tbody', {}, ...rows));
    const notes = [];
    if (listing.entries.length === 0) notes.push(h('p', { class: 'files-empty', text: 'This folder is empty.' }));
    if (listing.truncated) notes.push(h('p', { class: 'files-empty', text: 'Only the first entries are shown.' }));
    this.body.replaceChildren(table, ...notes);
  }

  private renderCrumbs(path: string): void {
    const parts = path ? path.split('/') : [];
    const crumb = (label: string, target: string) =>
      h('button', { class: 'files-crumb', text: label, attrs: { type: 'button' }, on: { click: () => this.navigate(target) } });
    const items: Node[] = [crumb('~', '')];
    parts.forEach((part, i) => items.push(document.createTextNode('/'), crumb(part, parts.slice(0, i + 1).join('/'))));
    this.crumbs.replaceChildren(...items);
  }

  private upRow(path: string): HTMLTableRowElement {
    const up = h('button', { class: 'files-name', text: '..', attrs: { type: 'button' }, on: { click: () => this.navigate(parentPath(path)) } });
    return h('tr', { testid: 'files-up' }, h('td', {}, up), h('td'), h('td'), h('td'));
  }

  private row(sessionId: string, entry: FileEntry, now: number): HTMLTableRowElement {
    const path = joinPath(this.folder, entry.name);
    const directory = entry.kind === 'directory';
    const open = () => (directory ? this.navigate(path) : void this.showPreview(sessionId, entry, path));
    const name = h('button', {
      class: `files-name files-${entry.kind}`,
      text: directory ? `${entry.name}/` : entry.name,
      attrs: { type: 'button', disabled: entry.kind === 'other' || entry.kind === 'symlink' ? true : null },
      on: { click: open },
    });
    const download = h('a', {
      class: 'files-download',
      testid: 'files-download',
      text: directory ? 'tar' : 'download',
      attrs: { href: filesApi.contentUrl(sessionId, path), download: directory ? `${entry.name}.tar` : entry.name },
    });
    return h(
      'tr',
      { testid: 'files-row', attrs: { 'data-name': entry.name, 'data-kind': entry.kind } },
      h('td', {}, name),
      h('td', { class: 'files-number', testid: 'files-size', text: directory ? '' : fileSize(entry.size) }),
      h('td', { title: absoluteTime(entry.modifiedAt), text: relativeTime(entry.modifiedAt, now) }),
      h('td', {}, entry.kind === 'other' ? null : download),
    );
  }

  private async showPreview(sessionId: string, entry: FileEntry, path: string): Promise<void> {
    const url = filesApi.contentUrl(sessionId, path);
    const title = h('div', { class: 'files-preview-title', text: `${entry.name} · ${fileSize(entry.size)}` });
    this.preview.hidden = false;
    if (isImageName(entry.name)) {
      const image = h('img', { testid: 'files-preview-image', attrs: { src: url, alt: entry.name } });
      this.preview.replaceChildren(title, image);
      return;
    }
    const text = h('pre', { class: 'files-preview-text', testid: 'files-preview-text', text: 'Loading…' });
    this.preview.replaceChildren(title, text);
    try {
      text.textContent = await readStart(url);
    } catch (error) {
      text.textContent = `Cannot preview: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  private renderError(error: unknown): void {
    this.element.dataset.state = 'error';
    const text = error instanceof ApiError ? (error.status === 0 ? 'The server cannot be reached.' : error.message) : String(error);
    this.body.replaceChildren(h('p', { class: 'files-empty', text: `Files are not available: ${text}` }));
  }
}

/** The first PREVIEW_BYTES of a download as text (binary is said so). */
async function readStart(url: string): Promise<string> {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok || !response.body) throw new ApiError(response.status, response.statusText || `HTTP ${response.status}`);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < PREVIEW_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  const cut = size >= PREVIEW_BYTES;
  await reader.cancel().catch(() => {});
  const bytes = new Uint8Array(Math.min(size, PREVIEW_BYTES));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
  }
  if (bytes.subarray(0, 8192).includes(0)) return '(a binary file: download it to see it)';
  const text = new TextDecoder().decode(bytes);
  return cut ? `${text}\n… (the first ${fileSize(PREVIEW_BYTES)} are shown)` : text;
}
