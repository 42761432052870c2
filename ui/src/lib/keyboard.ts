// Keyboard shortcuts: a pure mapping from a key event to an action, so it can be tested without
// a DOM. Shortcuts never fire while the user types (inputs, textareas, selects, contenteditable),
// never with Ctrl/Alt/Meta, never on auto-repeat; Enter and Space on a focused button or link do
// what that control does (the browser's activation wins), so keyboard users get what they see.
// Right to left the arrows follow the mirrored layout (→ is the previous prompt), and P and R
// also work by key position (KeyP, KeyR) on layouts where they type other letters (Arabic).
export type ShortcutAction = 'toggleRecord' | 'play' | 'rerecord' | 'accept' | 'prev' | 'next' | 'escape';

export interface KeyLike {
  key: string;
  /** the physical key (KeyboardEvent.code), e.g. "KeyP" */
  code?: string;
  ctrlKey?: boolean;
  altKey?: boolean;
  metaKey?: boolean;
  repeat?: boolean;
  target?: EventTarget | null;
}

/** A form field or editable element: keys belong to it. */
export function isTypingTarget(target: EventTarget | null | undefined): boolean {
  if (!target || typeof (target as Element).tagName !== 'string') return false;
  const el = target as HTMLElement;
  const tag = el.tagName.toLowerCase();
  if (tag === 'textarea' || tag === 'select') return true;
  if (tag === 'input') {
    const type = (el as HTMLInputElement).type;
    return !['button', 'submit', 'reset'].includes(type);
  }
  return el.isContentEditable === true || el.getAttribute('contenteditable') === 'true';
}

/** A control that Enter/Space activate natively. */
export function isActivatable(target: EventTarget | null | undefined): boolean {
  if (!target || typeof (target as Element).tagName !== 'string') return false;
  const el = target as HTMLElement;
  const tag = el.tagName.toLowerCase();
  if (tag === 'button' || tag === 'summary' || (tag === 'a' && el.hasAttribute('href'))) return true;
  if (tag === 'input') return ['button', 'submit', 'reset'].includes((el as HTMLInputElement).type);
  const role = el.getAttribute('role');
  return role === 'button' || role === 'link' || role === 'tab' || role === 'menuitem';
}

export const SHORTCUTS: Record<string, ShortcutAction> = {
  ' ': 'toggleRecord',
  p: 'play',
  P: 'play',
  r: 'rerecord',
  R: 'rerecord',
  Enter: 'accept',
  ArrowLeft: 'prev',
  ArrowRight: 'next',
};

/** Letter shortcuts by physical key, for layouts whose P and R keys type other letters. */
const BY_CODE: Record<string, ShortcutAction> = { KeyP: 'play', KeyR: 'rerecord' };

export function shortcutFor(e: KeyLike, rtl = false): ShortcutAction | null {
  if (e.key === 'Escape') return 'escape';
  if (e.ctrlKey || e.altKey || e.metaKey || e.repeat) return null;
  if (isTypingTarget(e.target)) return null;
  if ((e.key === 'Enter' || e.key === ' ') && isActivatable(e.target)) return null;
  const action = SHORTCUTS[e.key] ?? (e.code ? BY_CODE[e.code] : undefined) ?? null;
  if (rtl && action === 'prev') return 'next';
  if (rtl && action === 'next') return 'prev';
  return action;
}
