//! Money as the usage view and the conversation list show it.

/** US dollars: four decimals under one dollar, else two. */
export function usd(n: number): string {
  const digits = n !== 0 && Math.abs(n) < 1 ? 4 : 2;
  return `$${n.toFixed(digits)}`;
}
