//! The terminals view's read-only hooks for the browser tests (see
//! app/test-hooks.ts): the open and active sessions, the active terminal's
//! text, sizes, viewport, acknowledgements, selection and renderer, and a
//! recorder of its size changes and of the PTY sizes announced to it.

import { exposeTestHooks } from '../app/test-hooks';
import type { TerminalPane } from './pane';

/** What the hooks read of the view. */
export interface HookedView {
  activeId(): string | null;
  openIds(): string[];
  activePane(): TerminalPane | null;
  /** Sets the one listener told of every pane change. */
  onPaneChanged(listener: (pane: TerminalPane) => void): void;
}

type Size = { cols: number; rows: number };
type SizeRecord = { resizes: Size[]; announced: Size[] };

export function exposeTerminalsTestHooks(view: HookedView): void {
  let record: SizeRecord = { resizes: [], announced: [] };
  let recording: { dispose(): void } | null = null;
  exposeTestHooks({
    activeSessionId: () => view.activeId(),
    openSessionIds: () => view.openIds(),
    bufferText: () => view.activePane()?.bufferText() ?? '',
    screenText: () => view.activePane()?.screenText() ?? '',
    terminalSize: () => {
      const pane = view.activePane();
      return pane ? { cols: pane.term.cols, rows: pane.term.rows } : null;
    },
    fittedSize: () => view.activePane()?.fittedSize() ?? null,
    announcedSize: () => view.activePane()?.ptySize ?? null,
    drawnFontSize: () => view.activePane()?.drawnFontSize ?? null,
    // From now on, the active terminal's size changes and the PTY sizes
    // announced to it (starting with the last one announced before).
    recordTerminalSizes: () => {
      const pane = view.activePane();
      const session = pane?.session;
      const current: SizeRecord = { resizes: [], announced: session ? [{ cols: session.cols, rows: session.rows }] : [] };
      record = current;
      recording?.dispose();
      recording = pane?.term.onResize(({ cols, rows }) => current.resizes.push({ cols, rows })) ?? null;
      view.onPaneChanged((changed) => {
        const session = changed.session;
        const last = current.announced[current.announced.length - 1];
        if (changed !== pane || !session || (last && last.cols === session.cols && last.rows === session.rows)) return;
        current.announced.push({ cols: session.cols, rows: session.rows });
      });
    },
    recordedTerminalSizes: () => record,
    terminalState: () => view.activePane()?.state.kind ?? null,
    viewport: () => {
      const term = view.activePane()?.term;
      if (!term) return null;
      const buffer = term.buffer.active;
      return {
        length: buffer.length,
        baseY: buffer.baseY,
        viewportY: buffer.viewportY,
        cursorX: buffer.cursorX,
        cursorY: buffer.cursorY,
        rows: term.rows,
      };
    },
    ackStats: () => view.activePane()?.ackStats ?? null,
    selectionText: () => view.activePane()?.term.getSelection() ?? '',
    renderer: () => view.activePane()?.element.dataset.renderer ?? null,
  });
}
