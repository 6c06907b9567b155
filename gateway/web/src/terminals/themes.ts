//! Terminal colours for the dark and light schemes, matched to the page's.

import type { ITheme } from '@xterm/xterm';
import type { Scheme } from '../app/theme';

const dark: ITheme = {
  background: '#0b0d11',
  foreground: '#d7dce5',
  cursor: '#7aa7ff',
  cursorAccent: '#0b0d11',
  selectionBackground: 'rgba(122, 167, 255, 0.32)',
  scrollbarSliderBackground: 'rgba(215, 220, 229, 0.16)',
  scrollbarSliderHoverBackground: 'rgba(215, 220, 229, 0.28)',
  scrollbarSliderActiveBackground: 'rgba(215, 220, 229, 0.36)',
  black: '#1c2028',
  red: '#f07178',
  green: '#8fd18a',
  yellow: '#e8c170',
  blue: '#7aa7ff',
  magenta: '#c792ea',
  cyan: '#74d3df',
  white: '#c9ced8',
  brightBlack: '#5c6370',
  brightRed: '#ff8b92',
  brightGreen: '#a8e3a3',
  brightYellow: '#f3d38c',
  brightBlue: '#9bbcff',
  brightMagenta: '#dcb0f5',
  brightCyan: '#97e4ec',
  brightWhite: '#f2f4f8',
};

const light: ITheme = {
  background: '#fbfbfc',
  foreground: '#1f2328',
  cursor: '#2257d6',
  cursorAccent: '#fbfbfc',
  selectionBackground: 'rgba(34, 87, 214, 0.22)',
  scrollbarSliderBackground: 'rgba(31, 35, 40, 0.14)',
  scrollbarSliderHoverBackground: 'rgba(31, 35, 40, 0.24)',
  scrollbarSliderActiveBackground: 'rgba(31, 35, 40, 0.32)',
  black: '#24292f',
  red: '#c62f3a',
  green: '#1a7f37',
  yellow: '#8a6100',
  blue: '#1f5fd1',
  magenta: '#8250df',
  cyan: '#0e7490',
  white: '#6e7781',
  brightBlack: '#57606a',
  brightRed: '#a40e26',
  brightGreen: '#116329',
  brightYellow: '#6f4a00',
  brightBlue: '#0a48b3',
  brightMagenta: '#6639ba',
  brightCyan: '#155e75',
  brightWhite: '#8c959f',
};

export function terminalTheme(scheme: Scheme): ITheme {
  return scheme === 'light' ? light : dark;
}
