//! Asks before the page goes away by a keyboard shortcut (Ctrl+W, Ctrl+R,
//! Cmd+W ...) while terminals are live. Terminal users type these keys out of
//! habit (Ctrl+W deletes a word in a shell) and outside full screen the
//! browser keeps them for itself. Closing or reloading the page otherwise
//! (the tab's close button, a link, the reload button) is not asked about:
//! the page knows a shortcut closed it because Ctrl or Cmd is still held.

/** Installs the guard; `live()` says whether anything would be lost. Returns the uninstall function. */
export function guardShortcutClose(live: () => boolean): () => void {
  let held = false;
  const follow = (event: KeyboardEvent | PointerEvent): void => {
    held = event.ctrlKey || event.metaKey;
  };
  const release = (): void => {
    held = false;
  };
  const beforeUnload = (event: BeforeUnloadEvent): void => {
    if (!held || !live()) return;
    event.preventDefault();
    // Older browsers ask only when a return value is set.
    event.returnValue = '';
  };
  window.addEventListener('keydown', follow, true);
  window.addEventListener('keyup', follow, true);
  window.addEventListener('pointerdown', follow, true);
  window.addEventListener('blur', release);
  window.addEventListener('beforeunload', beforeUnload);
  return () => {
    window.removeEventListener('keydown', follow, true);
    window.removeEventListener('keyup', follow, true);
    window.removeEventListener('pointerdown', follow, true);
    window.removeEventListener('blur', release);
    window.removeEventListener('beforeunload', beforeUnload);
  };
}
