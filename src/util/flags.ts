// Numeric flags: one parser, one error shape (exit 2 naming the flag and the accepted range).
import { usageError } from '../errors.js';

/** The flag's number, undefined when the flag was not given; out of range or not a number is a usage error. */
export function numberFlag(
  text: string | undefined,
  flag: string,
  opts: { integer?: boolean; min: number; max: number },
): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isFinite(v) || v < opts.min || v > opts.max || (opts.integer && !Number.isInteger(v)))
    throw usageError(`invalid ${flag}: "${text}"`, `a${opts.integer ? 'n integer' : ' number'} from ${opts.min} to ${opts.max}`);
  return v;
}

/** --concurrency and the like: an integer from 1 to 256. */
export function countFlag(text: string | undefined, flag: string, fallback: number): number {
  return numberFlag(text, flag, { integer: true, min: 1, max: 256 }) ?? fallback;
}
