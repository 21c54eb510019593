// How a failed guard statement is told apart: a lost connection (reconnect with backoff; a node
// that cannot be reached is retried for ever, since a guard over a fleet goes on guarding the
// others), a tick blocked by a lock (55P03: find and end the holder, see unblock-actions.ts), or
// anything else, which leaves the guard connected but blind (counted against --max-blind).
import { redact } from '../pg/redact.js';

/** A server error carries a severity; anything without one never got an answer from the server. */
export function isConnectionLoss(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  if (typeof e?.severity !== 'string') return true;
  if (e.severity === 'FATAL' || e.severity === 'PANIC') return true;
  // connection exceptions (08...) and operator intervention (57P01 admin shutdown, 57P02 crash, 57P03 cannot connect now)
  return typeof e.code === 'string' && (e.code.startsWith('08') || e.code.startsWith('57P'));
}

/** lock_not_available: the tick waited longer than its lock_timeout. */
export function isLockTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  return typeof e?.severity === 'string' && e.code === '55P03';
}

/** The lock_timeout of the tick: a fraction of a second, so that a blocked tick is retried (and unblocked) quickly. */
export function lockTimeoutMs(intervalMs: number): number {
  return Math.min(1000, Math.max(100, 2 * intervalMs));
}

/** While a node's tick keeps failing (neither lost connection nor lock): since when, and with what. */
export interface Blind {
  sinceMs: number;
  error: string;
  sqlstate: string | undefined;
  /** When it was last said on stderr (repeats are said every REPEAT_MS, or when the error changes). */
  saidMs: number;
}

export const REPEAT_MS = 5000;

/** A failure in one line for events: its message and SQLSTATE, passwords redacted. */
export function errText(err: unknown): string {
  const e = err as { message?: string; sqlstate?: string; code?: string };
  const code = e.sqlstate ?? (e.code && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined);
  return redact(`${e.message ?? String(err)}${code ? ` [SQLSTATE ${code}]` : ''}`);
}
