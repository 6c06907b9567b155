//! Dates and durations as people read them.

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function relativeTime(epochMs: number, now: number = Date.now()): string {
  const elapsed = now - epochMs;
  if (!Number.isFinite(elapsed)) return '';
  if (elapsed < 45_000) return 'just now';
  for (const [unit, size] of units) {
    if (elapsed >= size || unit === 'minute') {
      const value = Math.max(1, Math.round(elapsed / size));
      return new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' }).format(-value, unit);
    }
  }
  return '';
}

/** A full local date and time, for tooltips. */
export function absoluteTime(epochMs: number): string {
  return new Date(epochMs).toLocaleString();
}
