// From the entries of one read to the failures they record, in order, with what one entry alone
// cannot say: the client address of a stderr log whose prefix has no %h (Debian's `%m [%p]
// %q%u@%d `), from the `connection received: host=... port=...` line the same backend logged first
// (log_connections), and stderr's forgery evidence, which also discredits the entries just before it.
import { authFailure, clientAddress, contradictsItself, type FailureContext } from './auth-failure.js';
import type { LogRecord } from './record.js';
import type { Parsed } from './parser.js';
import type { Span } from './stderr.js';
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
 * stderr: the entries that may be forged (stderr.ts): no longer than the client text one prefix
 * holds, and within that reach of a foreign line or of an entry whose %u its own message denies.
 */
export function markForgeries(parsed: Parsed): void {
  const reach = parsed.forgeable ?? 0;
  if (reach === 0) return;
  const evidence: Span[] = [...(parsed.foreign ?? []), ...parsed.records.filter(contradictsItself).map(spanOf)];
  for (const r of parsed.records) {
    if (r.length > reach) continue;
    if (evidence.some((e) => r.offset >= e.offset - reach - 1 && r.offset + r.length <= e.end + reach + 1)) r.suspect = true;
  }
  for (const r of parsed.records.filter(contradictsItself)) r.suspect = true;
}

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
      if (r.pid !== null && r.severity === 'FATAL') {
        if (f && f.address === null) f.address = this.paired(f);
        this.receipts.delete(r.pid); // FATAL ends the backend: its pid is free for the next one
      }
      if (!f) continue;
      if (f.address === null) this.stats.unaddressed++;
      out.push(f);
    }
    return out;
  }
}
