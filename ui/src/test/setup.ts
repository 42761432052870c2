// Vitest setup: jsdom has no canvas and no matchMedia; give the components harmless stand-ins.
import { afterEach } from 'vitest';
import { setLanguage } from '../lib/i18n';

HTMLCanvasElement.prototype.getContext = (() => null) as unknown as HTMLCanvasElement['getContext'];

if (!window.matchMedia) {
  window.matchMedia = ((query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addEventListener: () => {},
    removeEventListener: () => {},
    addListener: () => {},
    removeListener: () => {},
    dispatchEvent: () => false,
  })) as unknown as typeof window.matchMedia;
}

afterEach(() => {
  document.documentElement.removeAttribute('data-theme');
  setLanguage('en');
});
