// Numbers from flags, the environment and connection strings: one parser, one error shape (exit 2,
// one line naming where the number came from and the accepted range). Decimal only: an empty
// string, a sign, hex (0x10), an exponent (1e3) or a fraction where an integer is due is refused
// rather than read as 0, 16 or 1000. Every range fits what the number feeds: Node's timers take at
// most MAX_TIMER_MS, and a longer delay fires after 1 ms instead.
import { usageError } from '../errors.js';

/** The longest delay setTimeout honours (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Session ages and idle limits, compared in SQL (`now() - interval`): up to 365 days. */
export const MAX_AGE_S = 365 * 86400;

export interface NumberRange {
  integer?: boolean;
  min: number;
  max: number;
  /** Shown after the range: `ms`, `seconds`. */
  unit?: string;
}

const INTEGER = /^\d+$/;
const DECIMAL = /^\d+(\.\d+)?$/;

function rangeText(r: NumberRange): string {
  return `a${r.integer ? 'n integer' : ' number'} from ${r.min} to ${r.max}${r.unit ? ` (${r.unit})` : ''}`;
}

/** `text` as a number in range; `what` names its source (`--port`, `PGPORT`, `port in the connection string`). */
export function parseNumber(text: string, what: string, r: NumberRange): number {
  const t = text.trim();
  const v = Number(t);
  if (!(r.integer ? INTEGER : DECIMAL).test(t) || v < r.min || v > r.max) throw usageError(`invalid ${what}: "${text}": ${rangeText(r)}`);
  return v;
}

/** The flag's number, undefined when the flag was not given; anything else out of range is exit 2. */
export function numberFlag(text: string | undefined, flag: string, r: NumberRange): number | undefined {
  return text === undefined ? undefined : parseNumber(text, flag, r);
}

/** --concurrency and the like: an integer from 1 to 256. */
export function countFlag(text: string | undefined, flag: string, fallback: number): number {
  return numberFlag(text, flag, { integer: true, min: 1, max: 256 }) ?? fallback;
}

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/;

/** `30s`, `5m`, `1h30m`, `250ms`, `2d`; a bare number is seconds. Returns seconds (no range: see durationFlag). */
export function parseDuration(text: string, flag = 'duration'): number {
  const t = text.trim();
  if (DECIMAL.test(t)) return Number(t);
  if (!DURATION.test(t)) throw usageError(`invalid ${flag}: "${text}": a number with a unit: 500ms, 30s, 5m, 1h, 2d (or combined: 1h30m)`);
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNITS[m[2]!]!;
  return total;
}

/** A duration flag in seconds, from `min` to `max` seconds. */
export function durationFlag(text: string, flag: string, r: { min: number; max: number }): number {
  const s = parseDuration(text, flag);
  if (s < r.min || s > r.max) throw usageError(`invalid ${flag}: "${text}": a duration from ${r.min} s to ${r.max} s`);
  return s;
}
