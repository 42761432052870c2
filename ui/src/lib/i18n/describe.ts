// Sentences built from the codes and numbers the backend sends: a quality check
// (`quality.<name>.<code>` with its values), an activity entry (`activity.<event>` with its
// params). The backend sends no words for these; everything a person reads is said here.
import { fmtNumber } from '../format';
import type { ActivityEntry, Check } from '../types';
import { hasKey, isolate, t, type Params } from './index';

/** Decimals per value name: seconds and percentages to a tenth, decibels whole (as measured). */
const DIGITS: Record<string, number> = { seconds: 1, before: 1, after: 1, percent: 1, dbfs: 0, db: 0, duration_s: 1 };

function numbers(values: Record<string, number>): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(values)) out[k] = Number.isFinite(v) ? fmtNumber(v, DIGITS[k] ?? 0) : fmtNumber(-Infinity);
  return out;
}

/** The words of one check: what was found and what to do about it. */
export function checkText(check: Check): string {
  const key = `quality.${check.name}.${check.code}`;
  if (hasKey(key)) return t(key, numbers(check.values));
  // A check or case this UI does not know yet: its verdict says enough to act on.
  return t(`quality.unknown.${check.verdict}`);
}

/** The name of a check for people. */
export function checkLabel(name: string): string {
  const key = `check.${name}`;
  return hasKey(key) ? t(key) : name;
}

/** One line for the activity screen. */
export function activityText(e: ActivityEntry): string {
  const key = `activity.${e.event}`;
  if (!hasKey(key)) return t('activity.other');
  const params: Params = {};
  for (const [k, v] of Object.entries(e.params)) {
    if (typeof v === 'number') params[k] = k in DIGITS ? fmtNumber(v, DIGITS[k]) : v; // ids and counts: t() writes them
    else if (typeof v === 'boolean') params[k] = String(v);
    else params[k] = k === 'reason' ? isolate(v) : v; // the contractor's own words
  }
  if (e.event === 'take.discarded') {
    // why is a code (older entries held a sentence: those get the line without it)
    const why = `discardWhy.${String(e.params.why)}`;
    return hasKey(why) ? t('activity.take.discardedWhy', { why: t(why) }) : t('activity.take.discarded');
  }
  if (e.event === 'mic.checked' && typeof e.params.verdict === 'string') {
    const v = `noise.short.${e.params.verdict}`;
    params.verdict = hasKey(v) ? t(v) : e.params.verdict;
  }
  // A detail an older log entry does not have shows as a dash, never as a {placeholder}.
  return t(key, params).replace(/\{\w+\}/g, '—');
}
