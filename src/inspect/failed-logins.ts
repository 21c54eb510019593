// Who is still knocking (issue 16): a role's failed logins in the recent server log, read over SQL
// by the log reader (src/serverlog/). Bounded: a look back of at most so many bytes from the end
// of the current file (into the one before it after a rotation), so that the cost does not grow
// with the log. inspect reads it after its facts; cutoff's verify step after containment.
import type { Queryable } from '../checks/types.js';
import { PgrevokeError } from '../errors.js';
import { logsReceipt } from '../serverlog/format.js';
import { compilePrefix } from '../serverlog/prefix.js';
import type { LogFormat } from '../serverlog/record.js';
import { SqlLogSource } from '../serverlog/sql-source.js';
import type { AuthFailure, AuthFailureKind } from '../serverlog/types.js';

/**
 * How much of the log's end inspect reads ("recent"). A look back costs about 10 ms per MiB over
 * SQL (bytea sent hex-encoded and decoded, then scanned; measured on a 23 MiB csvlog: 1 MiB 11 ms,
 * 2 MiB 18 ms, 8 MiB 68 ms on a warm connection, some 8 ms more on inspect's fresh one), against
 * about 30-40 ms for the rest of inspect: 1 MiB keeps what a large log adds to about a third.
 */
export const LOOK_BACK_BYTES = 1024 * 1024;
/** The most a cutoff's verification reads, after containment, when a busy log needs it. */
export const MAX_LOOK_BACK_BYTES = 8 * 1024 * 1024;
/** Addresses listed per role (most attempts first); the rest are counted. */
const MAX_ADDRESSES = 100;

export type KindCounts = Partial<Record<AuthFailureKind, number>>;

export interface AddressKnocks {
  /** null: the Unix socket, or a log that does not say. */
  address: string | null;
  count: number;
  first: string;
  last: string;
  kinds: KindCounts;
  /** 16+: the pg_hba.conf lines these attempts matched (auth_failed()'s DETAIL), ascending. */
  hbaLines: number[];
}

export interface RoleKnocks {
  role: string;
  count: number;
  first: string | null;
  last: string | null;
  kinds: KindCounts;
  hbaLines: { line: number; count: number }[];
  /** Most attempts first, at most MAX_ADDRESSES; `addressCount` counts them all. */
  addresses: AddressKnocks[];
  addressCount: number;
}

/** How far a look back reached. */
export interface LogReach {
  format: LogFormat;
  /** Where it began: the current file, or the one before it after a rotation. */
  file: string;
  offset: number;
  /** The log time of the oldest entry read: what came before it is not counted. */
  oldest: string | null;
  /** The most it reads, in bytes from the end. */
  lookBackBytes: number;
}

/** inspect: the role's failed logins in the look back. */
export interface FailedLogins extends RoleKnocks {
  log: LogReach;
  warnings: string[];
}

/** cutoff: logins of the targets refused from the cutoff on, read by the verify step. */
export interface RefusedLogins {
  /** Counted from: committedAt (a standby: when it had replayed the primary's commit, this host's clock). */
  since: string;
  /** The look back reached `since` (false: it began later, so earlier refusals after the cutoff are not counted). */
  complete: boolean;
  /** Every target, attempts or not. */
  roles: RoleKnocks[];
  log: LogReach;
  warnings: string[];
}

export interface KnockRead {
  /** The failures of the users asked for, in log order. */
  failures: AuthFailure[];
  log: LogReach;
  warnings: string[];
}

export type KnockResult = { ok: true; read: KnockRead } | { ok: false; reason: string };

const GRANTS =
  'GRANT EXECUTE ON FUNCTION pg_current_logfile(text), pg_ls_logdir(), pg_read_binary_file(text, bigint, bigint, boolean) (docs/server-log.md)';

/** Why the log could not be read, and what to turn on: one line. */
function unreadable(err: unknown, source: SqlLogSource): string {
  const e = err as { code?: string; message?: string };
  const s = source.serverSettings;
  if (e.code === '42501') return `${e.message ?? 'permission denied'}: read it as a superuser, or ${GRANTS}`;
  if (s && s.collector !== 'on')
    return `logging_collector is off, so the log is not readable over SQL: set logging_collector = on (a restart) and log_destination = 'csvlog'${s.version >= 150000 ? " (or 'jsonlog')" : ''}`;
  if (err instanceof PgrevokeError) return err.hint ? `${err.message}; ${err.hint}` : err.message;
  return `${e.message ?? String(err)}${e.code ? ` [SQLSTATE ${e.code}]` : ''}`;
}

/** A stderr log that names no client: no %h or %r in log_line_prefix, and no `connection received` lines to pair. */
function addressless(source: SqlLogSource): boolean {
  const s = source.serverSettings;
  if (source.format !== 'stderr' || !s) return false;
  const escapes = compilePrefix(s.prefix).escapes;
  return !escapes.has('h') && !escapes.has('r') && !logsReceipt(s.connections);
}

/**
 * The failed logins of `users` (exact names, as the client gave them) in the last `back` bytes of
 * the log. Never throws: an unreadable log is a reason.
 */
export async function readKnocks(q: Queryable, users: ReadonlySet<string>, back = LOOK_BACK_BYTES): Promise<KnockResult> {
  // a poll reads at most pollBytes: the look back, and a chunk for what is written meanwhile
  const source = new SqlLogSource(q, { back, pollBytes: back + 1024 * 1024 });
  let all: AuthFailure[];
  try {
    all = await source.poll();
    // stderr holds back its last entries while the file grows (forgery evidence): one more poll takes them
    if (source.format === 'stderr') all.push(...(await source.poll()));
  } catch (err) {
    return { ok: false, reason: unreadable(err, source) };
  }
  if (addressless(source))
    return {
      ok: false,
      reason:
        "the log is stderr and names no client address: add %h to log_line_prefix, or set log_connections = on (18: a list holding 'receipt'), or log_destination = 'csvlog'",
    };
  const start = source.backStart;
  return {
    ok: true,
    read: {
      failures: all.filter((f) => users.has(f.user)),
      log: { format: source.format!, file: start?.file ?? '', offset: start?.offset ?? 0, oldest: start?.at ?? null, lookBackBytes: back },
      warnings: [...source.warnings],
    },
  };
}

const ms = (iso: string) => Date.parse(iso);

function countKind(kinds: KindCounts, kind: AuthFailureKind): void {
  kinds[kind] = (kinds[kind] ?? 0) + 1;
}

/** One role's attempts in `failures`, by address (most first), with kinds and pg_hba.conf lines. */
export function summarize(role: string, failures: readonly AuthFailure[]): RoleKnocks {
  const mine = failures.filter((f) => f.user === role);
  const kinds: KindCounts = {};
  const lines = new Map<number, number>();
  const byAddress = new Map<string | null, AddressKnocks>();
  let first: string | null = null;
  let last: string | null = null;
  for (const f of mine) {
    countKind(kinds, f.kind);
    if (first === null || ms(f.at) < ms(first)) first = f.at;
    if (last === null || ms(f.at) >= ms(last)) last = f.at;
    if (f.hbaLine !== null) lines.set(f.hbaLine, (lines.get(f.hbaLine) ?? 0) + 1);
    const a = byAddress.get(f.address) ?? { address: f.address, count: 0, first: f.at, last: f.at, kinds: {}, hbaLines: [] };
    a.count++;
    if (ms(f.at) < ms(a.first)) a.first = f.at;
    if (ms(f.at) >= ms(a.last)) a.last = f.at;
    countKind(a.kinds, f.kind);
    if (f.hbaLine !== null && !a.hbaLines.includes(f.hbaLine)) a.hbaLines.push(f.hbaLine);
    byAddress.set(f.address, a);
  }
  const addresses = [...byAddress.values()].sort((x, y) => y.count - x.count || ms(y.last) - ms(x.last));
  for (const a of addresses) a.hbaLines.sort((x, y) => x - y);
  return {
    role,
    count: mine.length,
    first,
    last,
    kinds,
    hbaLines: [...lines].sort((x, y) => x[0] - y[0]).map(([line, count]) => ({ line, count })),
    addresses: addresses.slice(0, MAX_ADDRESSES),
    addressCount: addresses.length,
  };
}

/** inspect's fact: the role's recent failed logins, or null with the reason the log could not be read. */
export async function collectFailedLogins(
  q: Queryable,
  role: string,
): Promise<{ failedLogins: FailedLogins | null; failedLoginsUnreadable: string | null }> {
  const got = await readKnocks(q, new Set([role]));
  if (!got.ok) return { failedLogins: null, failedLoginsUnreadable: got.reason };
  return {
    failedLogins: { ...summarize(role, got.read.failures), log: got.read.log, warnings: got.read.warnings },
    failedLoginsUnreadable: null,
  };
}

/** The cutoff's look backs: a short one first (the cutoff was seconds ago), the whole bound when it began too late. */
const REFUSED_BACKS = [256 * 1024, MAX_LOOK_BACK_BYTES];

/**
 * cutoff's verification: the targets' failed logins at or after `since` (the NOLOGIN commit), from
 * the log's end. Never throws: an unreadable log is a reason, never a failed cutoff.
 */
export async function collectRefusedLogins(
  q: Queryable,
  roles: readonly string[],
  since: string,
): Promise<{ refusedLogins: RefusedLogins | null; refusedLoginsUnreadable: string | null }> {
  // the log has milliseconds, committedAt microseconds: compare at the millisecond
  const from = Math.floor(Date.parse(since));
  if (Number.isNaN(from)) return { refusedLogins: null, refusedLoginsUnreadable: `cannot read the cutoff's time ${JSON.stringify(since)}` };
  let read: KnockRead | null = null;
  for (const back of REFUSED_BACKS) {
    const got = await readKnocks(q, new Set(roles), back);
    if (!got.ok) return { refusedLogins: null, refusedLoginsUnreadable: got.reason };
    read = got.read;
    if (reaches(read.log, from)) break;
  }
  if (!read) return { refusedLogins: null, refusedLoginsUnreadable: 'not read' };
  const after = read.failures.filter((f) => ms(f.at) >= from);
  return {
    refusedLogins: {
      since,
      complete: reaches(read.log, from),
      roles: roles.map((r) => summarize(r, after)),
      log: read.log,
      warnings: read.warnings,
    },
    refusedLoginsUnreadable: null,
  };
}

/** Whether a look back began at or before `from`: at a file's start, or with an entry no later. */
function reaches(log: LogReach, from: number): boolean {
  return log.offset === 0 || (log.oldest !== null && ms(log.oldest) <= from);
}
