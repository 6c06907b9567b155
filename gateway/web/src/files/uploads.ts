//! Uploads into a session's folder: each file is sent with the progress
//! shown in a strip above the terminal, a taken name gets a number rather
//! than replacing the file, and once written the file's path can be typed
//! at the prompt (so Claude Code can be pointed at a screenshot).

import { ApiError } from '../app/api';
import { h } from '../app/dom';
import { type UploadedFile, joinPath, upload } from './api';
import { fileSize, numberedName } from './format';

/** Numbered names tried before giving up on a taken name. */
const MAX_RENAMES = 50;

/** A file to upload, under the name it gets. */
export interface Outgoing {
  name: string;
  body: Blob;
}

export class Uploads {
  /** The progress strip (hidden while nothing is being sent). */
  readonly element: HTMLElement;
  private readonly label = h('span', { class: 'files-upload-label', testid: 'files-upload-label' });
  private readonly bar = h('progress', { class: 'files-upload-bar', testid: 'files-upload-progress', attrs: { max: 1, value: 0 } });
  private active = 0;

  constructor(
    private readonly written: (sessionId: string, file: UploadedFile) => void,
    private readonly failed: (message: string) => void,
  ) {
    this.element = h('div', { class: 'files-uploads', testid: 'files-uploads', attrs: { role: 'status' } }, this.label, this.bar);
    this.element.hidden = true;
  }

  /** Sends `files` into `folder` of the session, one after the other. */
  async send(sessionId: string, folder: string, files: Outgoing[]): Promise<void> {
    this.active += 1;
    this.element.hidden = false;
    try {
      for (const file of files) {
        try {
          const written = await this.sendOne(sessionId, folder, file);
          this.written(sessionId, written);
        } catch (error) {
          this.failed(`${file.name}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    } finally {
      this.active -= 1;
      if (this.active === 0) this.element.hidden = true;
    }
  }

  private async sendOne(sessionId: string, folder: string, file: Outgoing): Promise<UploadedFile> {
    for (let n = 0; ; n += 1) {
      const name = n === 0 ? file.name : numberedName(file.name, n);
      this.show(name, 0, file.body.size);
      try {
        return await upload(sessionId, joinPath(folder, name), file.body, {
          overwrite: false,
          onProgress: (sent, total) => this.show(name, sent, total),
        });
      } catch (error) {
        const taken = error instanceof ApiError && error.status === 409;
        if (!taken || n >= MAX_RENAMES) throw error;
      }
    }
  }

  private show(name: string, sent: number, total: number): void {
    this.label.textContent = `Uploading ${name}: ${fileSize(sent)} of ${fileSize(total)}`;
    this.bar.max = Math.max(total, 1);
    this.bar.value = Math.min(sent, this.bar.max);
  }
}
