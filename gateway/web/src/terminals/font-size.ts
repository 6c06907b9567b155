//! The terminals' font size: chosen with the toolbar's smaller/larger
//! buttons, kept in this browser (localStorage), within a readable range.

const FONT_KEY = 'dispatch.fontSize';
const MIN_FONT = 9;
const MAX_FONT = 28;

/** The stored size, or the default for this screen (smaller on phones). */
export function storedFontSize(): number {
  const stored = Number(localStorage.getItem(FONT_KEY));
  if (Number.isInteger(stored) && stored >= MIN_FONT && stored <= MAX_FONT) return stored;
  return matchMedia('(max-width: 760px)').matches ? 13 : 14;
}

/** `size` changed by `delta` within the range, remembered for the next visit. */
export function changeFontSize(size: number, delta: number): number {
  const next = Math.min(MAX_FONT, Math.max(MIN_FONT, size + delta));
  localStorage.setItem(FONT_KEY, String(next));
  return next;
}
