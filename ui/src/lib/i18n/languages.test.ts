// The second language (Arabic, right to left) against the reference (English): every key, the
// same placeholders, Arabic's plural forms; and the words for every code the backend sends.
import { afterEach, describe, expect, it } from 'vitest';
import { ar } from './ar';
import { fmtBytes, fmtDb, fmtSeconds } from '../format';
import { activityText, checkText } from './describe';
import { en } from './en';
import { direction, getLanguage, LANGUAGES, setLanguage, t, type Entry, type MessageKey } from './index';
// The Rust side of the contract, read as text: the activity events the backend names, and the
// table of check codes and values (crates/voxseal-app).
import viewsRs from '../../../../crates/voxseal-app/src/views.rs?raw';
import typesRs from '../../../../crates/voxseal-app/src/types.rs?raw';
import auditEventRs from '../../../../crates/voxseal-core/src/store/audit_event.rs?raw';

afterEach(() => setLanguage('en'));

const forms = (e: Entry): [string, string][] => (typeof e === 'string' ? [['', e]] : Object.entries(e));
const placeholders = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
const union = (e: Entry): string[] => [...new Set(forms(e).flatMap(([, f]) => placeholders(f)))].sort();

describe('the Arabic dictionary', () => {
  it('has exactly the English keys', () => {
    expect(Object.keys(ar).sort()).toEqual(Object.keys(en).sort());
  });

  it('uses the same placeholders as English', () => {
    for (const key of Object.keys(en) as MessageKey[]) {
      const want = union(en[key]);
      for (const [form, text] of forms(ar[key])) {
        const got = placeholders(text);
        // zero, one and two may say the number in words; every other parameter must be there
        const need = ['zero', 'one', 'two'].includes(form) ? want.filter((p) => p !== 'count') : want;
        for (const p of need) expect(got, `${key}.${form} lacks {${p}}`).toContain(p);
        for (const p of got) expect(want, `${key}.${form} has an unknown {${p}}`).toContain(p);
      }
    }
  });

  it('gives all six Arabic plural forms wherever English has plural forms', () => {
    for (const key of Object.keys(en) as MessageKey[]) {
      if (typeof en[key] === 'string') continue;
      expect(Object.keys(ar[key]).sort(), key).toEqual(['few', 'many', 'one', 'other', 'two', 'zero']);
    }
  });

  it('is Arabic: no entry is left in English', () => {
    // Product names, units, keys and examples of links stay Latin; everything else has Arabic.
    const latinOnly = ['app.name', 'enroll.placeholder', 'meter.valueText', 'shortcut.p', 'shortcut.r', 'shortcut.enter', 'shortcut.esc', 'quality.snr.ok', 'unit.dbfs', 'unit.kib', 'unit.mib'];
    for (const key of Object.keys(ar) as MessageKey[]) {
      if (latinOnly.includes(key)) continue;
      for (const [form, text] of forms(ar[key])) {
        if (!/\p{L}/u.test(text.replace(/\{\w+\}/g, ''))) continue; // no words: arrows, a bare value
        expect(/[\u0600-\u06FF]/.test(text), `${key}.${form}: ${text}`).toBe(true);
      }
    }
  });

  it('picks the plural form by Intl.PluralRules("ar")', () => {
    setLanguage('ar');
    expect(t('queue.rawCount', { count: 0 })).toBe('لا توجد تسجيلات خام على هذا الحاسوب.');
    expect(t('queue.rawCount', { count: 1 })).toBe('يوجد تسجيل خام واحد على هذا الحاسوب.');
    expect(t('queue.rawCount', { count: 2 })).toBe('يوجد تسجيلان خامان على هذا الحاسوب.');
    expect(t('queue.rawCount', { count: 3 })).toBe('توجد 3 تسجيلات خام على هذا الحاسوب.');
    expect(t('queue.rawCount', { count: 11 })).toBe('يوجد 11 تسجيلًا خامًا على هذا الحاسوب.');
    expect(t('queue.rawCount', { count: 100 })).toBe('يوجد 100 تسجيل خام على هذا الحاسوب.');
  });

  it('switches the document to right to left and back', () => {
    setLanguage('ar');
    expect([getLanguage(), direction()]).toEqual(['ar', 'rtl']);
    expect(document.documentElement.dir).toBe('rtl');
    expect(document.documentElement.lang).toBe('ar');
    setLanguage('fr'); // no dictionary: English, left to right
    expect([getLanguage(), document.documentElement.dir]).toEqual(['en', 'ltr']);
  });

  it('is offered in Settings', () => {
    expect(LANGUAGES.map((l) => l.code)).toEqual(['en', 'ar']);
  });
});

/** The check table of `CheckView` in types.rs: name -> code -> value names. */
function checkTable(): Map<string, Map<string, string[]>> {
  const table = new Map<string, Map<string, string[]>>();
  for (const m of typesRs.matchAll(/^\/\/\/ \| `(\w+)` \| (.+) \|$/gm)) {
    const codes = new Map<string, string[]>();
    for (const part of m[2]!.split(';')) {
      const [names, values = ''] = part.split(':');
      const vals = [...values.matchAll(/`(\w+)`/g)].map((v) => v[1]!).sort();
      for (const c of names!.matchAll(/`(\w+)`/g)) codes.set(c[1]!, vals);
    }
    table.set(m[1]!, codes);
  }
  return table;
}

describe('words for the codes the backend sends', () => {
  it('reads the backend’s tables', () => {
    expect([...checkTable().keys()]).toEqual(['duration', 'clipping', 'speech', 'level', 'snr', 'silence', 'noise']);
  });

  it.each(['en', 'ar'])('has a sentence for every check code, with its values (%s)', (lang) => {
    setLanguage(lang);
    for (const [name, codes] of checkTable()) {
      for (const [code, values] of codes) {
        const key = `quality.${name}.${code}` as MessageKey;
        expect(key in en, key).toBe(true);
        expect(placeholders(forms(en[key])[0]![1]), key).toEqual(values);
        const text = checkText({ name, verdict: 'warn', code, values: Object.fromEntries(values.map((v) => [v, 1.25])) });
        expect(text, key).not.toMatch(/[{}]/);
      }
    }
  });

  it.each(['en', 'ar'])('has a sentence for every activity event the backend names (%s)', (lang) => {
    setLanguage(lang);
    const events = [...viewsRs.matchAll(/^\s+\("([a-z_]+\.[a-z_]+)", &\[/gm)].map((m) => m[1]!);
    expect(events.length).toBeGreaterThan(15);
    for (const event of events) {
      expect(`activity.${event}` in en, event).toBe(true);
      const text = activityText({ seq: 1, time: '', event, params: {} });
      expect(text, event).not.toBe(t('activity.other'));
    }
    expect(activityText({ seq: 1, time: '', event: 'some.future_event', params: {} })).toBe(t('activity.other'));
  });

  it.each(['en', 'ar'])('says why a take was discarded, for every reason core logs (%s)', (lang) => {
    setLanguage(lang);
    const body = auditEventRs.slice(auditEventRs.indexOf('pub enum DiscardReason'));
    const variants = [...body.slice(0, body.indexOf('}')).matchAll(/^\s+([A-Z]\w+),/gm)].map((m) =>
      m[1]!.replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c.toLowerCase()),
    );
    expect(variants).toContain('by_contractor');
    for (const why of variants) {
      const text = activityText({ seq: 1, time: '', event: 'take.discarded', params: { why } });
      expect(text, why).not.toBe(t('activity.take.discarded'));
      expect(text, why).not.toMatch(/[{}]/);
    }
    // an entry of before, whose why was a sentence: the line without it
    const old = activityText({ seq: 1, time: '', event: 'take.discarded', params: { why: 'discarded by the contractor' } });
    expect(old).toBe(t('activity.take.discarded'));
  });

  it('renders numbers the locale’s way, rounded as measured', () => {
    const check = { name: 'level', verdict: 'warn' as const, code: 'quiet', values: { dbfs: -41.6 } };
    expect(checkText(check)).toBe('Too quiet (-42 dBFS): move closer or raise the input gain.');
    setLanguage('ar');
    const text = checkText(check);
    expect(text).toContain(new Intl.NumberFormat('ar-u-nu-latn', { maximumFractionDigits: 0 }).format(-42));
    expect(text.startsWith('منخفض جدًا')).toBe(true);
    // Western digits everywhere, whatever the system's ICU would pick for plain "ar"
    expect(text).not.toMatch(/[\u0660-\u0669]/);
    expect(t('session.progress', { n: 4, total: 12 })).toBe('العبارة 4 من 12');
  });

  it('keeps a value with its unit together right to left', () => {
    expect(fmtBytes(380 * 1024)).toBe('380 KiB'); // left to right: as it is
    setLanguage('ar');
    // "380 KiB / 419 KiB" in an Arabic line: each value isolated, so the pair is not reordered
    expect(fmtBytes(380 * 1024)).toBe('\u2068380 KiB\u2069');
    expect(fmtDb(-42)).toMatch(/^\u2068\u2066\u200e?-42\.0\u2069 dBFS\u2069$/); // Intl may add an LRM
    expect(fmtSeconds(5.5)).toBe('\u20685.5 ث\u2069');
  });

  it('fills an activity line from its params, and a dash for a detail an old entry lacks', () => {
    const e = { seq: 3, time: '', event: 'take.recorded', params: { prompt: 'p001', duration_s: 3.46, interrupted: false } };
    expect(activityText(e)).toBe('Recorded a take of prompt p001 (3.5 s)');
    expect(activityText({ ...e, params: { duration_s: 2 } })).toBe('Recorded a take of prompt — (2.0 s)');
    const mic = { seq: 4, time: '', event: 'mic.checked', params: { verdict: 'too_noisy' } };
    expect(activityText(mic)).toBe('Microphone check: too noisy');
    setLanguage('ar');
    expect(activityText(mic)).toBe('فحص الميكروفون: ضجيج مرتفع');
  });
});
