// Where to start when there is no cursor yet: at the end of the current file, so that only what is
// logged from now on counts. The end may fall inside an entry being written; a csvlog entry may
// also span lines (a quoted newline), so for csvlog the last line start is not enough: the start is
// the first line start in the tail from which every record reads as csvlog (a start inside a quoted
// field reads as garbage), and then the end of the last complete record after it.
import { csvlogRecord } from './csvlog.js';
import type { LogFormat } from './record.js';
import { UnitScanner } from './units.js';

/** How much of the file's end to look at. */
export const TAIL_BYTES = 64 * 1024;
const MAX_TRIES = 64;
const STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/;

/** The file offset of the last entry boundary in `tail` (read at file offset `base`, ending at the file's end). */
export function lastBoundary(format: LogFormat, tail: Buffer, base: number): number {
  if (base === 0 && tail.length === 0) return 0;
  const lastNl = tail.lastIndexOf(0x0a);
  if (format !== 'csvlog') return lastNl < 0 ? base : base + lastNl + 1;
  if (base === 0 && tail.length > 0 && tail.length <= TAIL_BYTES) {
    // the whole file: its start is a boundary
    const scan = new UnitScanner(true, Number.MAX_SAFE_INTEGER).scan(tail, 0);
    return scan.end;
  }
  const found = csvlogStart(tail);
  if (found) return base + found.end;
  // nothing in the tail reads as csvlog: start at its end and let the reader resynchronize on errors
  return lastNl < 0 ? base + tail.length : base + lastNl + 1;
}

/**
 * The first line start in `buf` (relative to it) from which every record in the next TAIL_BYTES
 * reads as csvlog, and the end of the last complete record there; null when none of the first
 * MAX_TRIES candidates does.
 */
function csvlogStart(buf: Buffer): { start: number; end: number } | null {
  let tries = 0;
  for (let nl = buf.indexOf(0x0a); nl >= 0 && tries < MAX_TRIES; nl = buf.indexOf(0x0a, nl + 1)) {
    const start = nl + 1;
    if (!STAMP.test(buf.subarray(start, start + 19).toString('latin1'))) continue;
    tries++;
    const scan = new UnitScanner(true, Number.MAX_SAFE_INTEGER).scan(buf.subarray(start, start + TAIL_BYTES), start);
    if (scan.units.length > 0 && scan.units.every((u) => csvlogRecord(u) !== null)) return { start, end: scan.end };
  }
  return null;
}

/**
 * Where to begin reading a file at an offset that is no known boundary (a look back of N bytes
 * from the end): the file offset of the first entry start in `buf`, read at file offset `base`,
 * after a newline in it (read from one byte early, so that a start right at the wanted offset is
 * found). csvlog: the first line start from which the records read as csvlog, not one inside a
 * quoted field; with none, the first line start (the reader resynchronizes).
 */
export function firstBoundary(format: LogFormat, buf: Buffer, base: number): number {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return base + buf.length;
  if (format !== 'csvlog') return base + nl + 1;
  return base + (csvlogStart(buf)?.start ?? nl + 1);
}
