// stderr-format entries: each line starts with log_line_prefix, then `LEVEL:  ` and the text; a
// message's own newlines continue on lines that start with a tab; DETAIL, HINT and the like follow
// on lines of their own, with the same prefix (elog.c's send_message_to_server_log).
//
// The prefix itself is not escaped: a newline in a client-chosen %u or %d (a user name can hold
// one) ends the line there, and what follows in the name is a line of the client's making, a
// forged entry with any pid, time or host. The server cuts both names to 63 bytes, so a forged
// entry lies inside at most forgeableBytes() of client text (127 for `%u@%d`), between the start
// of the real line and its rest, the rest being a line that neither starts with the prefix nor
// with a tab (foreign), a DETAIL line with no entry before it, or a failure whose %u is not the
// user its message names (auth-failure.ts). What that evidence discredits is worked out in
// extract.ts: entries that short, just before it (or just after a real line's cut-off start),
// and their copies (every line of the forger's backend carries the same prefix). A real login
// failure is not that close to such a line, so a client cannot hide someone's failures this way.
import { matchHead, matchPrefix, type CompiledPrefix } from './prefix.js';
import type { LogRecord } from './record.js';
import type { Unit } from './units.js';

/** How far past a forged line the rest of the real line can end (the hold-back before a file settles, parser.ts). */
export const FORGERY_REACH = 256;
const NAME_BYTES = 63; // NAMEDATALEN - 1: ProcessStartupPacket cuts user and database names to this

/** The most client-chosen bytes one prefix can hold: from its first %u/%d to its last, names at their longest. */
export function forgeableBytes(prefix: CompiledPrefix): number {
  const free = prefix.tokens.map((t) => 'esc' in t && (t.esc === 'u' || t.esc === 'd'));
  const first = free.indexOf(true);
  if (first < 0) return 0;
  let bytes = 0;
  for (let i = first; i <= free.lastIndexOf(true); i++) {
    const t = prefix.tokens[i]!;
    bytes += 'lit' in t ? t.lit.length : 'esc' in t ? Math.max(t.pad, free[i] ? NAME_BYTES : 64) : 0;
  }
  return bytes;
}

const SECONDARY = new Set(['DETAIL', 'HINT', 'CONTEXT', 'STATEMENT', 'QUERY', 'LOCATION']);
const TAB = 0x09;

interface Entry {
  readings: LogRecord[];
  offset: number;
  end: number;
  /** Where continuation lines go: the text after the level, or the merged DETAIL. */
  into: 'message' | 'detail' | 'none';
}

/** A line's readings as records (only the session readings when there are any). */
function readLine(prefix: CompiledPrefix, unit: Unit, line: string): LogRecord[] {
  const readings = matchPrefix(prefix, line);
  const session = readings.filter((r) => r.session);
  const out: LogRecord[] = [];
  const seen = new Set<string>();
  for (const r of session.length ? session : readings) {
    let text = line.slice(r.rest);
    let sqlstate = r.fields.sqlstate ?? null;
    // log_error_verbosity = verbose: `FATAL:  28P01: password authentication failed ...`
    const verbose = !SECONDARY.has(r.level) && /^[0-9A-Z]{5}: /.exec(text);
    if (verbose) {
      sqlstate ??= text.slice(0, 5);
      text = text.slice(7);
    }
    const pid = r.fields.pid === undefined ? null : Number(r.fields.pid);
    const rec: LogRecord = {
      format: 'stderr',
      time: r.fields.time ?? null,
      pid,
      user: r.session ? (r.fields.user ?? null) : null,
      database: r.session ? (r.fields.database ?? null) : null,
      remoteHost: r.session ? hostOf(r.fields.host) : null,
      severity: r.level,
      sqlstate,
      message: text,
      detail: null,
      offset: unit.offset,
      length: unit.bytes.length,
    };
    const key = JSON.stringify([rec.time, rec.pid, rec.user, rec.database, rec.remoteHost, rec.severity, rec.message]);
    if (!seen.has(key)) out.push(rec);
    seen.add(key);
  }
  return out;
}

/** %h writes the host, %r `host(port)`; [local] for the socket; nothing before the client is known. */
function hostOf(text: string | undefined): string | null {
  if (!text) return null;
  const paren = text.indexOf('(');
  return paren > 0 ? text.slice(0, paren) : text;
}

function sameSession(a: LogRecord, b: LogRecord): boolean {
  return a.pid === b.pid && a.user === b.user && a.database === b.database && a.time === b.time;
}

/** Attach a DETAIL (or HINT, ...) line to the entry it belongs to; false when it belongs to none. */
function attach(entry: Entry | null, readings: LogRecord[], unit: Unit): boolean {
  if (!entry || readings.length === 0) return false;
  const kept: LogRecord[] = [];
  let detail = false;
  for (const r of entry.readings) {
    const own = readings.find((d) => SECONDARY.has(d.severity) && sameSession(d, r));
    if (!own) continue;
    if (own.severity === 'DETAIL') {
      r.detail = r.detail === null ? own.message : `${r.detail}\n${own.message}`;
      detail = true;
    }
    kept.push(r);
  }
  if (kept.length === 0) return false;
  entry.readings = kept;
  entry.end = unit.offset + unit.bytes.length;
  entry.into = detail ? 'detail' : 'none';
  return true;
}

function continueEntry(entry: Entry, unit: Unit, text: string): void {
  for (const r of entry.readings) {
    if (entry.into === 'message') r.message += `\n${text}`;
    else if (entry.into === 'detail') r.detail += `\n${text}`;
  }
  entry.end = unit.offset + unit.bytes.length;
}

export interface Span {
  offset: number;
  end: number;
  /** A foreign line that starts as the prefix does up to %u/%d: a real line's start, a forged line may follow it. */
  head?: boolean;
}

export interface StderrResult {
  records: LogRecord[];
  /** Lines that neither start with the prefix nor continue an entry (another program's output, or a forgery's remains). */
  foreign: Span[];
}

/** The entries in `units` (complete lines, in file order). */
export function parseStderr(prefix: CompiledPrefix, units: Unit[]): StderrResult {
  const entries: Entry[] = [];
  const foreign: Span[] = [];
  let current: Entry | null = null;
  let lastForeign: Span | null = null;
  for (const unit of units) {
    const line = unit.bytes.toString('utf8');
    const end = unit.offset + unit.bytes.length;
    if (unit.bytes[0] === TAB) {
      if (current) continueEntry(current, unit, line.slice(1));
      else if (lastForeign) lastForeign.end = end;
      continue;
    }
    const readings = readLine(prefix, unit, line);
    if (readings.length > 0 && readings.every((r) => SECONDARY.has(r.severity))) {
      if (attach(current, readings, unit)) continue;
      // a DETAIL of no entry just before it: the server writes them together, so this one is a remnant
      lastForeign = { offset: unit.offset, end };
      foreign.push(lastForeign);
      current = null;
      continue;
    }
    if (readings.length === 0) {
      lastForeign = { offset: unit.offset, end, ...(matchHead(prefix, line) ? { head: true } : {}) };
      foreign.push(lastForeign);
      current = null;
      continue;
    }
    current = { readings: readings.filter((r) => !SECONDARY.has(r.severity)), offset: unit.offset, end, into: 'message' };
    lastForeign = null;
    entries.push(current);
  }
  const records = entries.map((e) => {
    const [first, ...rest] = e.readings.map((r) => ({ ...r, offset: e.offset, length: e.end - e.offset }));
    return { ...first!, ...(rest.length ? { alternatives: rest } : {}) };
  });
  return { records, foreign };
}
