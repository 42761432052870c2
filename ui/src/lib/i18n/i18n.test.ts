// The dictionary and t(); and a guard that components contain no hard-coded English.
import { describe, expect, it } from 'vitest';
import { en } from './en';
import { hasKey, t } from './index';

describe('t', () => {
  it('fills parameters', () => {
    expect(t('session.progress', { n: 3, total: 8 })).toBe('Prompt 3 of 8');
  });
  it('picks plural forms', () => {
    expect(t('queue.rawCount', { count: 1 })).toBe('1 raw recording is on this computer.');
    expect(t('queue.rawCount', { count: 4 })).toBe('4 raw recordings are on this computer.');
  });
  it('leaves unknown placeholders visible', () => {
    expect(t('session.progress', { n: 1 })).toBe('Prompt 1 of {total}');
  });
  it('has no empty strings', () => {
    for (const [key, value] of Object.entries(en)) {
      const forms = typeof value === 'string' ? [value] : Object.values(value);
      for (const f of forms) expect(f.trim(), key).not.toBe('');
    }
  });
  it('has labels for the quality checks the core produces', () => {
    for (const name of ['duration', 'clipping', 'speech', 'level', 'snr', 'silence', 'noise']) {
      expect(hasKey(`check.${name}`), name).toBe(true);
    }
  });
  it('spells the noise verdicts as the issue asks', () => {
    expect(t('noise.verdict.too_quiet')).toMatch(/^Too quiet: move closer or raise input gain/);
    expect(t('noise.verdict.too_noisy')).toMatch(/^Too noisy/);
    expect(t('noise.verdict.good')).toMatch(/^Good/);
  });
});

// Every component's source, through Vite (no Node APIs in the app's type-checked sources).
const sources = import.meta.glob<string>('/src/**/*.svelte', { query: '?raw', import: 'default', eager: true });

describe('components', () => {
  const files = Object.entries(sources);

  it('are found', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)('%s has no hard-coded text', (_, source) => {
    let markup = source
      .replace(/<script[\s\S]*?<\/script>/g, '')
      .replace(/<style[\s\S]*?<\/style>/g, '')
      .replace(/<!--[\s\S]*?-->/g, '');
    // attributes people read must come from t()
    const literalAttr = markup.match(/\s(aria-label|aria-valuetext|title|placeholder|alt)="[^"{]*[A-Za-z][^"]*"/g);
    expect(literalAttr, 'literal user-facing attribute').toBeNull();
    // text between tags, once {expressions} and tags are removed
    for (let prev = ''; prev !== markup; ) {
      prev = markup;
      markup = markup.replace(/\{[^{}]*\}/g, ' '); // innermost {expressions} first
    }
    markup = markup.replace(/<[^>]*>/g, ' ');
    const words = markup.match(/[A-Za-z]{2,}/g);
    expect(words, 'hard-coded words').toBeNull();
  });
});
