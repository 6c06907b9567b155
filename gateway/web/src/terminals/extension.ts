//! The contract between the terminals view and the features that hook into
//! it (the network panel, sharing, uploads, files ...): a feature is a
//! function given a `TerminalsExtensionHost`; it adds its toolbar buttons and
//! panels, listens on the terminal area (drop, paste), follows the active
//! terminal, and returns what to dispose. Features are listed in
//! extensions.ts.

import type { Session } from '../app/api';
import type { TerminalPane } from './pane';
import type { Toolbar } from './toolbar';

/** The terminal shown in the workspace. */
export interface ActiveTerminal {
  sessionId: string;
  /** The session as last known (from the pane or the list), if known yet. */
  session: Session | null;
  pane: TerminalPane;
}

export interface TerminalsExtensionHost {
  /** `toolbar.addAction(toolbarButton(...))` adds a button (shown while a terminal is open). */
  readonly toolbar: Toolbar;
  /** The element the terminals are drawn in: listen here for drops and pastes. */
  readonly area: HTMLElement;
  /** Adds a panel above the terminal (hide it with `hidden` while it is closed). */
  addPanel(element: HTMLElement): void;
  /** The active terminal, or `null` when none is open. */
  active(): ActiveTerminal | null;
  /**
   * Calls `listener` when the active terminal changes, or its session does
   * (renamed, resized, ended): it may be called again with the same one.
   * Returns the unsubscription.
   */
  onActiveChange(listener: (active: ActiveTerminal | null) => void): () => void;
  /** A short message for the user. */
  notify(text: string, tone?: 'info' | 'error'): void;
}

/** What a feature leaves to clean up when the view goes. */
export interface TerminalsExtension {
  dispose?(): void;
}

export type TerminalsExtensionFactory = (host: TerminalsExtensionHost) => TerminalsExtension | void;
