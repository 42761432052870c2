// Number and time formatting for display; all words come from the dictionary.
import { direction, intlLocale, t } from './i18n';

/**
 * Right to left, a value with its unit ("380 KiB", "-42.0 dBFS") is isolated (FSI ... PDI): next
 * to another such value ("380 KiB / 419 KiB") the Latin units and digits would otherwise be
 * reordered across the pair.
 */
function unit(text: string): string {
  return direction() === 'rtl' ? `\u2068${text}\u2069` : text;
}

export function fmtDb(value: number): string {
  if (!Number.isFinite(value)) return unit(t('unit.dbfs', { value: direction() === 'rtl' ? '\u2066−∞\u2069' : '−∞' }));
  return unit(t('unit.dbfs', { value: fmtNumber(value, 1) }));
}

export function fmtSeconds(value: number): string {
  return unit(t('unit.seconds', { value: fmtNumber(value, 1) }));
}

export function fmtNumber(value: number, digits = 0): string {
  const text = new Intl.NumberFormat(intlLocale(), {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
  // Right to left, a negative number after Arabic words would show its minus on the wrong side
  // ("15-"): keep it left to right (LRI ... PDI).
  return direction() === 'rtl' && value < 0 ? `\u2066${text}\u2069` : text;
}

export function fmtPercent(ratio: number): string {
  return new Intl.NumberFormat(intlLocale(), { style: 'percent', maximumFractionDigits: 0 }).format(
    Number.isFinite(ratio) ? ratio : 0,
  );
}

export function fmtBytes(bytes: number): string {
  if (bytes < 1024) return unit(t('unit.bytes', { value: fmtNumber(bytes) }));
  if (bytes < 1024 * 1024) return unit(t('unit.kib', { value: fmtNumber(bytes / 1024, 0) }));
  return unit(t('unit.mib', { value: fmtNumber(bytes / (1024 * 1024), 1) }));
}

/** An RFC 3339 time as a local date and time; the raw string if it does not parse. */
export function fmtTime(iso: string | null): string {
  if (!iso) return t('time.never');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(intlLocale(), { dateStyle: 'medium', timeStyle: 'medium' }).format(d);
}

/** Maps dBFS (-60..0) to 0..1 for meter bars. */
export function dbToFraction(db: number, floor = -60): number {
  if (!Number.isFinite(db)) return 0;
  return Math.min(1, Math.max(0, (db - floor) / -floor));
}

export function fraction(done: number, total: number): number {
  if (total <= 0) return 0;
  return Math.min(1, Math.max(0, done / total));
}
