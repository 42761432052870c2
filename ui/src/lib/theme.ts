import type { Theme } from './types';

export const THEMES: Theme[] = ['system', 'light', 'dark'];

/** Sets data-theme on <html>; app.css maps it (and prefers-color-scheme for "system") to colours. */
export function applyTheme(theme: Theme, root: HTMLElement | undefined = globalThis.document?.documentElement): void {
  if (root) root.dataset.theme = theme;
}
