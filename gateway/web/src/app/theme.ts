//! The colour scheme follows the system (`prefers-color-scheme`); CSS does
//! the page, and views that draw with their own colours (the terminal)
//! subscribe here.

export type Scheme = 'dark' | 'light';

const query = (): MediaQueryList | null =>
  typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: light)') : null;

export function currentScheme(): Scheme {
  return query()?.matches ? 'light' : 'dark';
}

/** Calls `listener` whenever the system scheme changes; returns the unsubscribe function. */
export function onSchemeChange(listener: (scheme: Scheme) => void): () => void {
  const media = query();
  if (!media) return () => {};
  const handler = (): void => listener(currentScheme());
  media.addEventListener('change', handler);
  return () => media.removeEventListener('change', handler);
}
