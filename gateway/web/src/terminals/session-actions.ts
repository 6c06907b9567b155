//! What the toolbar and the key bar do to the active terminal: rename and
//! end its session (with a dialog), copy its selection, paste the clipboard
//! into it, and full screen with the keyboard lock.

import { ApiError, sessionsApi, type Session } from '../app/api';
import { confirmDialog, promptDialog } from '../app/dialog';
import { toast } from '../app/toast';
import { MAX_SESSION_NAME_CHARS } from '../generated/limits';
import { errorText } from './new-session-form';
import type { TerminalPane } from './pane';

/** Asks for a new name; `renamed` gets the session as the broker now has it. */
export async function renameSession(pane: TerminalPane, renamed: (session: Session) => void): Promise<void> {
  const current = pane.session?.name ?? '';
  const name = await promptDialog({ title: 'Rename session', label: 'Name', value: current, confirmLabel: 'Rename', maxLength: MAX_SESSION_NAME_CHARS });
  pane.focus();
  if (name === null || name === current) return;
  try {
    renamed(await sessionsApi.rename(pane.sessionId, name));
  } catch (error) {
    toast(`Could not rename: ${errorText(error)}`, 'error');
  }
}

/** Once confirmed, ends the session: `ended` gets it (`null` when the broker had lost it). */
export async function endSession(pane: TerminalPane, title: string, ended: (session: Session | null) => void): Promise<void> {
  const confirmed = await confirmDialog({
    title: `End “${title}”?`,
    message: 'Its process and everything it started will be stopped. This cannot be undone.',
    confirmLabel: 'End session',
    danger: true,
  });
  if (!confirmed) {
    pane.focus();
    return;
  }
  try {
    ended(await sessionsApi.end(pane.sessionId));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) ended(null);
    else toast(`Could not end the session: ${errorText(error)}`, 'error');
  }
}

/** The selection to the clipboard, said with a toast (`hint`: what to say when nothing is selected). */
export function copySelection(pane: TerminalPane, hint = true): void {
  const selection = pane.term.getSelection();
  if (!selection) {
    if (hint) toast('Nothing selected: long-press the text to select it.');
    return;
  }
  if (!navigator.clipboard) {
    toast('Copy failed: this page has no clipboard access.', 'error');
    return;
  }
  void navigator.clipboard.writeText(selection).then(
    () => toast('Copied'),
    () => toast('Copy failed', 'error'),
  );
}

/** The clipboard as typed, or, where the browser will not tell it, a box to paste into. */
export async function pasteClipboard(pane: TerminalPane): Promise<void> {
  let text: string | null = null;
  try {
    text = (await navigator.clipboard?.readText()) ?? null;
  } catch {
    text = null;
  }
  if (text === null) {
    text = await promptDialog({ title: 'Paste', label: 'Paste the text here', value: '', confirmLabel: 'Paste', maxLength: 100_000 });
  }
  if (text) pane.paste(text);
  pane.focus();
}

/**
 * Full screen with the Keyboard Lock API, where the browser has it: keys the
 * browser keeps for itself otherwise (Ctrl+W, Ctrl+T, Ctrl+N) reach the terminal.
 */
export async function toggleFullscreen(): Promise<void> {
  const keyboard = (navigator as Navigator & { keyboard?: { lock?(): Promise<void>; unlock?(): void } }).keyboard;
  try {
    if (document.fullscreenElement) {
      keyboard?.unlock?.();
      await document.exitFullscreen();
    } else {
      await document.documentElement.requestFullscreen();
      await keyboard?.lock?.();
    }
  } catch {
    // Not allowed here (an iframe, a phone): nothing to undo.
  }
}
