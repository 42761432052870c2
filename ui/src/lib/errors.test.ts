import { describe, expect, it } from 'vitest';
import { appError, isAppError, normalizeError } from './errors';
import { ERROR_KINDS } from './types';
import { hasKey } from './i18n';

describe('normalizeError', () => {
  it('keeps known kinds', () => {
    for (const kind of ERROR_KINDS) expect(normalizeError({ kind, message: 'm' })).toEqual({ kind, message: 'm' });
  });
  it('maps everything else to internal', () => {
    expect(normalizeError('text')).toEqual({ kind: 'internal', message: 'text' });
    expect(normalizeError(new TypeError('x'))).toEqual({ kind: 'internal', message: 'x' });
    expect(normalizeError({ kind: 'weird', message: 'w' })).toEqual({ kind: 'internal', message: 'w' });
    expect(normalizeError(42)).toEqual({ kind: 'internal', message: '42' });
    expect(normalizeError(null)).toEqual({ kind: 'internal', message: 'null' });
  });
  it('drops extra fields', () => {
    expect(normalizeError({ kind: 'busy', message: 'b', stack: 'secret' })).toEqual({ kind: 'busy', message: 'b' });
  });
  it('recognises AppErrors', () => {
    expect(isAppError(appError('storage', 'disk full'))).toBe(true);
    expect(isAppError({ kind: 'storage' })).toBe(false);
  });
  it('has a human text for every kind', () => {
    for (const kind of ERROR_KINDS) expect(hasKey(`error.${kind}`), kind).toBe(true);
  });
});
