//! The files feature of the terminals view: a toolbar button opening the
//! files panel, the upload progress strip, and uploads by dropping files on
//! the terminal or pasting an image into it. An uploaded file's path is
//! typed at the prompt when the panel's option says so.

import type { TerminalsExtensionHost } from '../terminals/extension';
import { toolbarButton } from '../terminals/toolbar';
import type { UploadedFile } from './api';
import { pastedName, shellQuote } from './format';
import { FilesPanel } from './panel';
import { type Outgoing, Uploads } from './uploads';
import './files.css';

/** A folder outline, drawn like the toolbar's other icons. */
const FOLDER_ICON = 'M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z';

export function filesExtension(host: TerminalsExtensionHost): { dispose(): void } {
  const written = (sessionId: string, file: UploadedFile) => {
    host.notify(`Uploaded ${file.path}`);
    if (panel.open && panel.currentSession === sessionId) void panel.refresh();
    const active = host.active();
    if (panel.typePath.checked && active?.sessionId === sessionId) {
      active.pane.paste(`${shellQuote(file.absolutePath)} `);
      active.pane.focus();
    }
  };
  const uploads = new Uploads(written, (message) => host.notify(`Upload failed: ${message}`, 'error'));
  const send = (files: Outgoing[], folder: string) => {
    const active = host.active();
    if (active && files.length) void uploads.send(active.sessionId, folder, files);
  };
  const panel = new FilesPanel({
    upload: (files, folder) => send(files.map((file) => ({ name: file.name, body: file })), folder),
    closed: () => host.active()?.pane.focus(),
  });
  const button = toolbarButton('terminal', 'Files: browse, download and upload', 'files-toggle', () =>
    panel.toggle(host.active()?.sessionId ?? null),
  );
  const path = button.querySelector('svg path');
  path?.setAttribute('d', FOLDER_ICON);
  button.querySelectorAll('svg path + path').forEach((extra) => extra.remove());
  host.toolbar.addAction(button);
  host.addPanel(uploads.element);
  host.addPanel(panel.element);

  const area = host.area;
  const carriesFiles = (event: DragEvent) => event.dataTransfer?.types.includes('Files') ?? false;
  const onDragOver = (event: DragEvent) => {
    if (!carriesFiles(event) || !host.active()) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    area.classList.add('files-drop-target');
  };
  const onDragLeave = () => area.classList.remove('files-drop-target');
  const onDrop = (event: DragEvent) => {
    area.classList.remove('files-drop-target');
    const files = [...(event.dataTransfer?.files ?? [])];
    if (files.length === 0) return;
    event.preventDefault();
    send(
      files.map((file) => ({ name: file.name, body: file })),
      panel.currentFolder,
    );
  };
  // Capture: an image pasted into the terminal never reaches xterm.js as
  // (empty) text.
  const onPaste = (event: ClipboardEvent) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length === 0 || !host.active()) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    send(
      files.map((file) => ({ name: file.type.startsWith('image/') ? pastedName(file.type) : file.name, body: file })),
      panel.currentFolder,
    );
  };
  area.addEventListener('dragover', onDragOver);
  area.addEventListener('dragleave', onDragLeave);
  area.addEventListener('drop', onDrop);
  area.addEventListener('paste', onPaste, { capture: true });
  const unsubscribe = host.onActiveChange((active) => panel.show(active?.sessionId ?? null));
  return {
    dispose: () => {
      unsubscribe();
      area.removeEventListener('dragover', onDragOver);
      area.removeEventListener('dragleave', onDragLeave);
      area.removeEventListener('drop', onDrop);
      area.removeEventListener('paste', onPaste, { capture: true });
      panel.close();
    },
  };
}
