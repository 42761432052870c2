// A tiny translation layer: every user-visible string lives in a dictionary (en.ts is the
// reference); t(key, params) looks it up, fills {placeholders} and picks plural forms with
// Intl.PluralRules of the active language when the entry has them and params.count is given
// (Arabic has all six forms: zero, one, two, few, many, other). Right-to-left languages set
// dir="rtl" on the document; the CSS uses logical properties so the layout mirrors.
import { ar } from './ar';
import { en, type MessageKey } from './en';
import { current } from './lang.svelte';

export type { MessageKey } from './en';
export type Params = Record<string, string | number>;
export interface PluralForms {
  zero?: string;
  one?: string;
  two?: string;
  few?: string;
  many?: string;
  other: string;
}
export type Entry = string | PluralForms;
/** A translation: any subset of the English keys (missing ones fall back to English). */
export type Dictionary = Partial<Record<MessageKey, Entry>>;

const dictionaries: Record<string, Dictionary> = { en, ar };

/** Languages written right to left. */
const RTL = new Set(['ar']);

/** Languages the settings screen offers (code -> key of its display name). */
export const LANGUAGES: { code: string; label: MessageKey }[] = [
  { code: 'en', label: 'language.en' },
  { code: 'ar', label: 'language.ar' },
];

/** Sets the UI language (unknown codes fall back to English) and the document's lang and dir. */
export function setLanguage(code: string): void {
  current.code = code in dictionaries ? code : 'en';
  if (typeof document !== 'undefined') {
    document.documentElement.lang = current.code;
    document.documentElement.dir = direction();
  }
}

export function getLanguage(): string {
  return current.code;
}

/**
 * The locale for Intl (numbers, dates, plural rules). Arabic is pinned to Western digits
 * (`nu-latn`, today's CLDR default for "ar"): older ICU versions (WebKitGTK's on Debian 12) would
 * write Arabic-Indic digits instead, so the same build would show different digits on different
 * systems.
 */
export function intlLocale(): string {
  return current.code === 'ar' ? 'ar-u-nu-latn' : current.code;
}

/** The writing direction of the active language. */
export function direction(): 'ltr' | 'rtl' {
  return RTL.has(current.code) ? 'rtl' : 'ltr';
}

/**
 * Wraps text of unknown direction (a prompt, a note, a name the contractor or the lead wrote) in
 * Unicode isolates (FSI ... PDI), so an Arabic prompt inside an English sentence, or English
 * inside an Arabic one, keeps its own order and does not reorder the sentence around it.
 */
export function isolate(text: string): string {
  return text ? `\u2068${text}\u2069` : text;
}

/** True when the key exists (for names that come from the backend, e.g. quality checks). */
export function hasKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

export function t(key: MessageKey, params?: Params): string {
  const language = current.code;
  const entry: Entry | undefined = dictionaries[language]?.[key] ?? en[key];
  if (entry === undefined) return key;
  let text: string;
  if (typeof entry === 'string') {
    text = entry;
  } else {
    const count = Number(params?.count ?? 0);
    const form = new Intl.PluralRules(intlLocale()).select(count) as keyof PluralForms;
    text = entry[form] ?? entry.other;
  }
  if (!params) return text;
  // Numbers in the language's digits (Arabic-Indic in Arabic), without grouping: counts, ids,
  // serials. Measured values come pre-formatted (format.ts) with their decimals.
  const digits = new Intl.NumberFormat(intlLocale(), { useGrouping: false, maximumFractionDigits: 20 });
  return text.replace(/\{(\w+)\}/g, (m, name: string) => {
    const value = params[name];
    if (value === undefined) return m;
    return typeof value === 'number' ? digits.format(value) : value;
  });
}
