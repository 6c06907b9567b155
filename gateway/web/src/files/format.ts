//! Small formatting helpers of the files panel: sizes, pasted files' names
//! and a path quoted for a shell prompt.

/** 0 B, 512 B, 1.5 KiB, 12 MiB. */
export function fileSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'bmp'];

/** Whether a file name is an image the gateway serves as one (previewable). */
export function isImageName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && IMAGE_EXTENSIONS.includes(name.slice(dot + 1).toLowerCase());
}

/** `pasted-20260102-030405.png` for an image pasted now. */
export function pastedName(type: string, now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const subtype = type.split('/')[1]?.split(/[+;]/)[0] ?? '';
  const extension = subtype === 'jpeg' ? 'jpg' : /^[a-z0-9]{1,8}$/.test(subtype) ? subtype : 'bin';
  return `pasted-${stamp}.${extension}`;
}

/** `name (1).ext`, `name (2).ext` ... for a name that is taken. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}

/** A path as a shell word: as is when plain, else single-quoted. */
export function shellQuote(path: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
