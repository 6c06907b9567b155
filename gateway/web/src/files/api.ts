//! The session files routes (docs/protocol.md): listing a folder, the URL a
//! file or folder archive downloads from, and uploads through XHR (whose
//! upload progress events drive the progress bar; the body is the File
//! itself, streamed by the browser, never read into memory here).

import { ApiError, request } from '../app/api';
import type { ErrorBody, FileList, UploadedFile } from '../generated/protocol';

export type { FileEntry, FileKind, FileList, UploadedFile } from '../generated/protocol';

function route(sessionId: string, suffix: string, path: string, extra = ''): string {
  return `/api/sessions/${encodeURIComponent(sessionId)}/${suffix}?path=${encodeURIComponent(path)}${extra}`;
}

/** Joins a folder and a name (`""` is the session's folder). */
export function joinPath(folder: string, name: string): string {
  return folder ? `${folder}/${name}` : name;
}

/** The folder above `path` (`""` at the top). */
export function parentPath(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut < 0 ? '' : path.slice(0, cut);
}

export const filesApi = {
  list: (sessionId: string, path: string): Promise<FileList> => request<FileList>('GET', route(sessionId, 'files', path)),
  /** Where a file (or a folder, as a tar archive) downloads from. */
  contentUrl: (sessionId: string, path: string): string => route(sessionId, 'files/content', path),
};

export interface UploadOptions {
  /** Replace an existing file (otherwise 409). */
  overwrite: boolean;
  /** Bytes sent so far, and the total. */
  onProgress?: (sent: number, total: number) => void;
}

/** Uploads `body` to `path` of the session. */
export function upload(sessionId: string, path: string, body: Blob, options: UploadOptions): Promise<UploadedFile> {
  const url = route(sessionId, 'files/content', path, options.overwrite ? '' : '&overwrite=false');
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (event) => options.onProgress?.(event.loaded, event.lengthComputable ? event.total : body.size);
    xhr.onerror = () => reject(new ApiError(0, 'The server cannot be reached.'));
    xhr.onabort = () => reject(new ApiError(0, 'The upload was cancelled.'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText) as UploadedFile);
        return;
      }
      let message = xhr.statusText || `HTTP ${xhr.status}`;
      try {
        const parsed = JSON.parse(xhr.responseText) as Partial<ErrorBody>;
        if (typeof parsed.error === 'string' && parsed.error) message = parsed.error;
      } catch {
        // Not JSON: keep the status text.
      }
      reject(new ApiError(xhr.status, message));
    };
    xhr.send(body);
  });
}
