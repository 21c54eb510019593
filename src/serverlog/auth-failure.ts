// A log entry -> the authentication failure it records, or null. Which entries count: FATAL, SQLSTATE
// 28P01 or 28000 where the format logs one, and one of the texts in messages.ts (with csvlog and
// jsonlog, a 28000/28P01 FATAL of another text counts too, as `other`: the SQLSTATE says what it is,
// and the user is in a field of its own). Where the user comes from, best first: a structured field
// (csv user_name, json user), the stderr prefix's %u when the message names the same user, the
// message itself when it can be read only one way.
import { canonicalAddress } from '../util/address.js';
import { detailSaysRoleMissing, hbaLineOfDetail, matchTemplate, type Slots } from './messages.js';
import type { LogRecord } from './record.js';
import { logTimeToIso } from './time.js';
import type { AuthFailure } from './types.js';

const AUTH_STATES = new Set(['28P01', '28000']);

export interface FailureContext {
  /** log_timezone (or the host's zone), to read an abbreviation such as CET. */
  zone: string | null;
  /** When the entry was read: the time given when the log's own cannot be read. */
  readAt: () => Date;
  /**
   * log_hostname is on: every host the log names is the client's reverse-DNS name, which the client
   * sets (a PTR record may read `10.1.2.3`), so no failure gets an address.
   */
  hostnames?: boolean;
}

/** A numeric client address, normalized (`::ffff:10.0.0.1` stays IPv6: pg_hba.conf tells the two apart); null otherwise. */
export function clientAddress(host: string | null | undefined): string | null {
  // a resolved host name (log_hostname = on) is no address; its reverse DNS is the client's to set
  if (!host || !/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(host)) return null;
  return canonicalAddress(host.replace(/%.*$/, ''));
}

/** The user the entry's message names, given what the entry says elsewhere; undefined when it cannot be told. */
function pickSplit(splits: Slots[], known: string | null): Slots | undefined {
  if (known !== null) return splits.find((s) => s.user === undefined || s.user === known);
  return splits.length === 1 ? splits[0] : undefined;
}

/** The failure one reading of an entry records, or null (not a failure, or a reading the message contradicts). */
function fromReading(r: LogRecord, ctx: FailureContext): AuthFailure | null {
  if (r.severity !== 'FATAL' || r.suspect) return null;
  if (r.sqlstate !== null && !AUTH_STATES.has(r.sqlstate)) return null;
  const match = matchTemplate(r.message);
  const structured = r.format !== 'stderr';
  let split: Slots | undefined;
  if (match) {
    split = pickSplit(match.splits, r.user);
    // stderr's %u disagreeing with the message: the line was not what it seems (see stderr.ts)
    if (!split && !structured) return null;
  } else if (!structured || r.sqlstate === null) return null;
  const user = structured ? (r.user ?? split?.user ?? null) : (split?.user ?? r.user);
  if (user === null || user === undefined) return null;
  let kind = match?.template.kind ?? 'other';
  if (kind === 'password' && detailSaysRoleMissing(r.detail, user)) kind = 'role_missing';
  const sqlstate = (r.sqlstate ?? match!.template.sqlstate) as AuthFailure['sqlstate'];
  return {
    at: (r.time && logTimeToIso(r.time, ctx.zone)) || ctx.readAt().toISOString(),
    user,
    database: r.database ?? split?.database ?? null,
    // the message's host is the server's numeric rendering, written before any client text
    address: clientAddress(r.remoteHost) ?? clientAddress(split?.host),
    sqlstate,
    kind,
    message: r.message,
    hbaLine: hbaLineOfDetail(r.detail),
    pid: r.pid,
  };
}

/**
 * The authentication failure an entry records, or null. With several readings (stderr), the ones
 * whose %u the message contradicts drop out; if the rest disagree on anything but the text, the
 * entry is not trusted at all.
 */
export function authFailure(record: LogRecord, ctx: FailureContext): AuthFailure | null {
  const found = [record, ...(record.alternatives ?? [])].map((r) => fromReading(r, ctx)).filter((f) => f !== null);
  if (found.length === 0) return null;
  const key = (f: AuthFailure) => JSON.stringify([f.user, f.database, f.address, f.kind, f.pid, f.at]);
  return found.every((f) => key(f) === key(found[0]!)) ? found[0]! : null;
}

/**
 * Whether the entry is stderr's evidence of a forged line: it reads as a login failure only in ways
 * whose %u is not the user the message names. (A real line always has one reading that agrees;
 * other readings, where a name holds ` LOG:  `, may not be failures at all.)
 */
export function contradictsItself(record: LogRecord): boolean {
  if (record.format !== 'stderr') return false;
  const fatal = [record, ...(record.alternatives ?? [])].filter((r) => r.severity === 'FATAL');
  return (
    fatal.length > 0 &&
    fatal.every((r) => {
      const match = matchTemplate(r.message);
      return match !== null && r.user !== null && pickSplit(match.splits, r.user) === undefined;
    })
  );
}
