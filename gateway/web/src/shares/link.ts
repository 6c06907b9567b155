//! A share link's parts: the id and secret in its fragment, and when it
//! expires, in words ("in 3 hours").

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];

/** `epochMs` from `now`, in the future: "in 5 min", "in 2 days"; "now" once past. */
export function untilTime(epochMs: number, now: number = Date.now()): string {
  const left = epochMs - now;
  if (!Number.isFinite(left)) return '';
  if (left <= 0) return 'now';
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
  if (left < 60_000) return format.format(Math.ceil(left / 1000), 'second');
  for (const [unit, size] of UNITS) {
    if (left >= size) return format.format(Math.round(left / size), unit);
  }
  return format.format(1, 'minute');
}

/** The link's parts from the share page's fragment: `#<id>.<secret>` (or `#<id>` once exchanged). */
export function parseFragment(hash: string): { shareId: string; secret: string | null } | null {
  const text = hash.replace(/^#/, '');
  const [shareId, secret] = text.split('.', 2);
  if (!/^[A-Za-z0-9_-]{16}$/.test(shareId ?? '')) return null;
  return { shareId, secret: secret ? secret : null };
}
