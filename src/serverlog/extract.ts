// From the entries of one read to the failures they record, in order, with what one entry alone
// cannot say: the client address of a stderr log whose prefix has no %h (Debian's `%m [%p]
// %q%u@%d `), from the `connection received: host=... port=...` line the same backend logged first
// (log_connections), and stderr's forgery evidence, which also discredits the entries just before it.
import { authFailure, clientAddress, contradictsItself, type FailureContext } from './auth-failure.js';
import type { LogRecord } from './record.js';
import type { Parsed } from './parser.js';
import { FORGERY_REACH, type Span } from './stderr.js';
import { logTimeToIso } from './time.js';
import type { AuthFailure } from './types.js';

const RECEIVED = 'connection received: host=';
/** A backend that has not finished logging in by then was ended by authentication_timeout (at most 600 s). */
const RECEIPT_TTL_MS = 15 * 60_000;
const MAX_TRACKED = 20_000;

interface Receipt {
  address: string;
  at: number | null;
}

/** The address in `connection received: host=H port=P` (or `host=[local]`), null for the socket or a host name. */
export function receivedAddress(message: string): string | null {
  if (!message.startsWith(RECEIVED)) return null;
  const rest = message.slice(RECEIVED.length);
  const space = rest.indexOf(' ');
  return clientAddress(space < 0 ? rest : rest.slice(0, space));
}

/**
 * stderr: mark the entries that may be forged (stderr.ts): no longer than the client text one
 * prefix holds, ending within that reach before a remnant (a foreign line, an orphan DETAIL, an
 * entry whose %u its own message denies) or starting within it after a real line's cut-off start;
 * and an entry as short that reads exactly as one of those, just after it (the forger's FATAL and
 * DETAIL lines carry the same prefix, so the same forged line, and the DETAIL's copy may look whole).
 */
export function markForgeries(parsed: Parsed): void {
  const reach = parsed.forgeable ?? 0;
  if (reach === 0) return;
  const foreign = parsed.foreign ?? [];
  const remnants: Span[] = [...foreign.filter((f) => !f.head), ...parsed.records.filter(contradictsItself).map(spanOf)];
  const heads = foreign.filter((f) => f.head);
  // per reading: where the last entry taken as forged with it ends
  const forged = new Map<string, number>();
  for (const r of parsed.records) {
    const end = r.offset + r.length;
    const beforeRemnant = remnants.some((e) => end <= e.offset && r.offset >= e.offset - reach - 1);
    const afterHead = heads.some((h) => r.offset >= h.end && end <= h.end + reach + 1);
    const key = readingKey(r);
    const copyOf = forged.get(key);
    if (contradictsItself(r) || (r.length <= reach && (beforeRemnant || afterHead || isCopy(r, copyOf)))) {
      r.suspect = true;
      forged.set(key, end);
    }
  }
}

/**
 * Whether an entry is the forger's second copy of a forged one that ended at `after`: the same
 * forged text in the prefix of the forger's DETAIL line, written by the same write, so after it and
 * close. Never a copy before the forged one, nor a long one: else an attacker forging a copy of its
 * own real failure line (time and pid predicted) would have the real one dropped with it.
 */
function isCopy(r: LogRecord, after: number | undefined): boolean {
  return after !== undefined && r.offset >= after && r.offset - after <= COPY_REACH;
}

/** How far past a forged line its copy in the forger's DETAIL line can start: the rest of the forger's FATAL line and the DETAIL's prefix. */
const COPY_REACH = 4 * FORGERY_REACH;

/** What an entry says, its DETAIL aside (a forged line's copy may have the real DETAIL attached). */
const readingKey = (r: LogRecord): string => JSON.stringify([r.time, r.pid, r.user, r.database, r.remoteHost, r.severity, r.message]);

const spanOf = (r: LogRecord): Span => ({ offset: r.offset, end: r.offset + r.length });

export interface ExtractStats {
  /** Entries taken as forged (stderr), or discredited by a forgery nearby. */
  suspect: number;
  /** Failures with no client address (a socket login, or a log that does not say). */
  unaddressed: number;
}

export class FailureExtractor {
  private readonly receipts = new Map<number, Receipt>();
  readonly stats: ExtractStats = { suspect: 0, unaddressed: 0 };

  constructor(private readonly ctx: FailureContext) {}

  private time(r: LogRecord): number | null {
    const iso = r.time ? logTimeToIso(r.time, this.ctx.zone) : null;
    return iso ? Date.parse(iso) : null;
  }

  private remember(pid: number, receipt: Receipt): void {
    this.receipts.delete(pid);
    this.receipts.set(pid, receipt);
    if (this.receipts.size > MAX_TRACKED) this.receipts.delete(this.receipts.keys().next().value!);
  }

  /** The address the backend's own `connection received` line gave, if it is recent enough to be this backend's. */
  private paired(f: AuthFailure): string | null {
    if (f.pid === null) return null;
    const receipt = this.receipts.get(f.pid);
    if (!receipt) return null;
    const at = Date.parse(f.at);
    if (receipt.at !== null && !Number.isNaN(at) && (at < receipt.at - 1000 || at - receipt.at > RECEIPT_TTL_MS)) return null;
    return receipt.address;
  }

  /** Learn the `connection received` lines of entries read before the start (no failure is taken from them). */
  prime(parsed: Parsed): void {
    markForgeries(parsed);
    for (const r of parsed.records) if (!r.suspect) this.receipt(r);
  }

  /** A `connection received` entry remembered (true), or false when the entry is none. */
  private receipt(r: LogRecord): boolean {
    if (r.pid === null || r.severity !== 'LOG' || !r.message.startsWith(RECEIVED)) return false;
    const address = receivedAddress(r.message);
    if (address) this.remember(r.pid, { address, at: this.time(r) });
    else this.receipts.delete(r.pid);
    return true;
  }

  /** The failures recorded by the entries before `parsed.end` (one read's entries, in file order; those after only testify). */
  take(parsed: Parsed): AuthFailure[] {
    const { records, end } = parsed;
    markForgeries(parsed);
    const out: AuthFailure[] = [];
    for (const r of records) {
      if (r.offset >= end) break;
      if (r.suspect) {
        this.stats.suspect++;
        continue;
      }
      if (this.receipt(r)) continue;
      const f = authFailure(r, this.ctx);
      // the failure may be an alternative reading (a database name holding ` LOG:  ` makes the first one a LOG)
      if (r.pid !== null && (f !== null || r.severity === 'FATAL')) {
        if (f && f.address === null) f.address = this.paired(f);
        this.receipts.delete(r.pid); // FATAL ends the backend: its pid is free for the next one
      }
      if (!f) continue;
      if (this.ctx.hostnames) f.address = null;
      if (f.address === null) this.stats.unaddressed++;
      out.push(f);
    }
    return out;
  }
}
