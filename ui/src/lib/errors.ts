// Error normalization: whatever a backend rejects with becomes an AppError {kind, message}.
// Pure (no Tauri import) so the scripted backend and the controllers can use it too;
// backend.ts re-exports it as part of the Backend API.
import { ERROR_KINDS, type AppError, type ErrorKind } from './types';

function isErrorKind(k: unknown): k is ErrorKind {
  return typeof k === 'string' && (ERROR_KINDS as readonly string[]).includes(k);
}

export function isAppError(e: unknown): e is AppError {
  return (
    typeof e === 'object' &&
    e !== null &&
    isErrorKind((e as { kind?: unknown }).kind) &&
    typeof (e as { message?: unknown }).message === 'string'
  );
}

/** Builds an AppError (used by the scripted backend and by tests). */
export function appError(kind: ErrorKind, message: string): AppError {
  return { kind, message };
}

/**
 * Turns anything thrown across IPC into an AppError.
 * - `{kind, message}` with a known kind: kept as is.
 * - `{kind, message}` with an unknown kind: kind "internal", message kept.
 * - a string (Tauri rejects with strings for unknown commands and denied permissions): "internal".
 * - an Error: "internal" with its message.
 */
export function normalizeError(e: unknown): AppError {
  if (isAppError(e)) return { kind: e.kind, message: e.message };
  if (typeof e === 'string') {
    // A JSON-encoded AppError inside a string (some serializers do that).
    try {
      const parsed: unknown = JSON.parse(e);
      if (isAppError(parsed)) return { kind: parsed.kind, message: parsed.message };
    } catch {
      /* not JSON */
    }
    return { kind: 'internal', message: e };
  }
  if (typeof e === 'object' && e !== null) {
    const o = e as { kind?: unknown; message?: unknown };
    const message = typeof o.message === 'string' ? o.message : String(e);
    return { kind: isErrorKind(o.kind) ? o.kind : 'internal', message };
  }
  return { kind: 'internal', message: String(e) };
}
