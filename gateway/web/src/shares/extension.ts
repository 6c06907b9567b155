//! Sharing in the terminals view: a toolbar button that opens the share
//! dialog for the active session (see dialog.ts).

import type { TerminalsExtension, TerminalsExtensionHost } from '../terminals/extension';
import { toolbarButton } from '../terminals/toolbar';
import { openShareDialog } from './dialog';

export function sharesExtension(host: TerminalsExtensionHost): TerminalsExtension {
  host.toolbar.addAction(
    toolbarButton('link', 'Share read-only', 'share-toggle', () => {
      const active = host.active();
      if (active) openShareDialog(active.sessionId, active.session?.name ?? '');
    }),
  );
  return {};
}
