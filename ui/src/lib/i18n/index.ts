// A tiny translation layer: every user-visible string lives in a dictionary (en.ts is the
// reference); t(key, params) looks it up, fills {placeholders} and picks plural forms with
// Intl.PluralRules when the entry has them and params.count is given.
import { en, type MessageKey } from './en';

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

const dictionaries: Record<string, Dictionary> = { en };

/** Languages the settings screen offers (code -> key of its display name). */
export const LANGUAGES: { code: string; label: MessageKey }[] = [{ code: 'en', label: 'language.en' }];

let language = 'en';

export function setLanguage(code: string): void {
  language = code in dictionaries ? code : 'en';
  if (typeof document !== 'undefined') document.documentElement.lang = language;
}

export function getLanguage(): string {
  return language;
}

/** True when the key exists (for names that come from the backend, e.g. quality checks). */
export function hasKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

export function t(key: MessageKey, params?: Params): string {
  const entry: Entry | undefined = dictionaries[language]?.[key] ?? en[key];
  if (entry === undefined) return key;
  let text: string;
  if (typeof entry === 'string') {
    text = entry;
  } else {
    const count = Number(params?.count ?? 0);
    const form = new Intl.PluralRules(language).select(count) as keyof PluralForms;
    text = entry[form] ?? entry.other;
  }
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) =>
    params[name] === undefined ? m : String(params[name]),
  );
}
