// Locks held by the role (its sessions and its prepared transactions), and locks.blocking: who waits on them.
import type { BlockingRow, Check, LockRow, Queryable } from './types.js';

/**
 * The role's prepared transactions (owner in `owners`, a text[] parameter) with the
 * virtualtransaction their locks are held under. Those locks have no pid; they share the
 * virtualtransaction of the xact's own transactionid lock, whose text differs across majors and
 * even across a restart (`4/2`, `-1/737`): match through the xid, never by building that text.
 */
export function preparedVxids(owners: string): string {
  return `px AS (
  SELECT p.gid, p.database, l.virtualtransaction AS vxid FROM pg_prepared_xacts p
  JOIN pg_locks l ON l.pid IS NULL AND l.locktype = 'transactionid' AND l.transactionid = p.transaction
  WHERE p.owner = ANY(${owners}))`;
}

/** A lock's relation by name where this database can name it (its own and shared catalogs), else by OID. */
export function lockedRelation(l: string): string {
  return `CASE WHEN ${l}.relation IS NULL THEN NULL
            WHEN ${l}.database IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())) THEN ${l}.relation::regclass::text
            ELSE 'oid ' || ${l}.relation::text END`;
}

/** What a lock is on, for people: `RowExclusiveLock on accounts`, `ExclusiveLock on transaction 745`. */
export function lockDescription(l: string): string {
  return `${l}.mode || ' on ' || CASE WHEN ${l}.locktype = 'relation' THEN ${lockedRelation(l)}
                                      WHEN ${l}.locktype = 'transactionid' THEN 'transaction ' || ${l}.transactionid::text
                                      ELSE ${l}.locktype END`;
}

/**
 * The one query for the role's locks, shared by inspect, verify (through inspect's facts) and
 * cutoff's check_locks: the locks of the backends $1 names (`role`: its OID, for the live sessions;
 * `pids`: an int[] of its former backends, which may still be exiting) and of its prepared
 * transactions (owners $2 text[]).
 */
export function roleLocksSql(backends: 'role' | 'pids', args: { backends?: string; owners?: string } = {}): string {
  const pids =
    backends === 'role'
      ? `l.pid IN (SELECT pid FROM pg_stat_activity WHERE usesysid = ${args.backends ?? '$1::oid'})`
      : `l.pid = ANY(${args.backends ?? '$1::int[]'})`;
  return `
WITH ${preparedVxids(args.owners ?? '$2::text[]')}
SELECT l.pid, l.locktype, l.mode, l.granted, d.datname AS database,
       ${lockedRelation('l')} AS relation,
       l.transactionid::text AS transaction_id, l.virtualtransaction, px.gid AS prepared_gid,
       px.database AS prepared_database, ${lockDescription('l')} AS description
FROM pg_locks l
LEFT JOIN pg_database d ON d.oid = l.database
LEFT JOIN px ON l.pid IS NULL AND l.virtualtransaction = px.vxid
WHERE (${pids} AND l.pid <> pg_backend_pid())
   OR px.gid IS NOT NULL
ORDER BY l.pid NULLS LAST, px.gid, l.locktype, relation`;
}

const LOCKS_SQL = roleLocksSql('role');

// Only backends waiting on a heavyweight lock can be blocked; skip the rest (cost stays flat with idle sessions).
// A prepared transaction shows in pg_blocking_pids() as pid 0: match its granted locks to the waiter's wanted lock.
/** Who waits on the role's locks; the role's OID and its owner names as SQL expressions (default: parameters $1, $2). */
export function blockingSql(role = '$1::oid', owners = '$2::text[]'): string {
  return `
WITH mine AS (SELECT pid FROM pg_stat_activity WHERE usesysid = ${role}),
${preparedVxids(owners)},
waiting AS (SELECT a.pid, a.usename, a.datname, a.query, a.state_change
            FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid())
SELECT w.pid AS blocked_pid, w.usename AS blocked_user, w.datname AS blocked_database, w.query AS blocked_query,
       extract(epoch FROM now() - w.state_change)::float8 AS waiting_seconds, b.pid AS blocker_pid, NULL::text AS blocker_gid
FROM waiting w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
WHERE b.pid IN (SELECT pid FROM mine)
UNION
SELECT w.pid, w.usename, w.datname, w.query, extract(epoch FROM now() - w.state_change)::float8, NULL, px.gid
FROM waiting w
JOIN pg_locks want ON want.pid = w.pid AND NOT want.granted
JOIN pg_locks held ON held.pid IS NULL AND held.granted
  AND held.locktype = want.locktype
  AND held.database IS NOT DISTINCT FROM want.database AND held.relation IS NOT DISTINCT FROM want.relation
  AND held.page IS NOT DISTINCT FROM want.page AND held.tuple IS NOT DISTINCT FROM want.tuple
  AND held.transactionid IS NOT DISTINCT FROM want.transactionid
JOIN px ON px.vxid = held.virtualtransaction
ORDER BY 1`;
}

const BLOCKING_SQL = blockingSql();

interface LockResult {
  pid: number | null;
  locktype: string;
  mode: string;
  granted: boolean;
  database: string | null;
  relation: string | null;
  transaction_id: string | null;
  virtualtransaction: string | null;
  prepared_gid: string | null;
}

export async function collectLocks(q: Queryable, roleOid: number, roleName: string): Promise<LockRow[]> {
  const { rows } = await q.query<LockResult>(LOCKS_SQL, [roleOid, [roleName]]);
  return toLockRows(rows);
}

/** roleLocksSql()'s rows as the report holds them. */
export function toLockRows(rows: readonly object[]): LockRow[] {
  return (rows as LockResult[]).map((r) => ({
    pid: r.pid,
    locktype: r.locktype,
    mode: r.mode,
    granted: r.granted,
    database: r.database,
    relation: r.relation,
    transactionId: r.transaction_id,
    virtualTransaction: r.virtualtransaction,
    preparedGid: r.prepared_gid,
  }));
}

interface BlockingResult {
  blocked_pid: number;
  blocked_user: string | null;
  blocked_database: string | null;
  blocked_query: string | null;
  waiting_seconds: number | null;
  blocker_pid: number | null;
  blocker_gid: string | null;
}

export async function collectBlocking(q: Queryable, roleOid: number, roleName: string): Promise<BlockingRow[]> {
  const { rows } = await q.query<BlockingResult>(BLOCKING_SQL, [roleOid, [roleName]]);
  return toBlockingRows(rows);
}

/** blockingSql()'s rows as the report holds them. */
export function toBlockingRows(rows: readonly object[]): BlockingRow[] {
  return (rows as BlockingResult[]).map((r) => ({
    blockedPid: r.blocked_pid,
    blockedUser: r.blocked_user,
    blockedDatabase: r.blocked_database,
    blockedQuery: r.blocked_query,
    waitingSeconds: r.waiting_seconds,
    blockerPid: r.blocker_pid,
    blockerGid: r.blocker_gid,
  }));
}

export const locksCheck: Check = {
  ids: ['locks.blocking'],
  evaluate(f) {
    if (f.blocking.length === 0) return [];
    const blocked = [...new Set(f.blocking.map((b) => b.blockedPid))];
    const by = f.blocking.map(
      (b) =>
        `${b.blockedPid} (${b.blockedUser ?? '?'}) waits on ${b.blockerGid ? `prepared xact '${b.blockerGid}'` : `pid ${b.blockerPid}`}`,
    );
    return [
      {
        id: 'locks.blocking',
        severity: 'high',
        title: `${blocked.length} other session(s) blocked by the role's locks`,
        detail: by.slice(0, 10).join('; ') + (by.length > 10 ? '; ...' : ''),
        remediation:
          'terminating the role\u2019s sessions and rolling back its prepared transactions releases these locks (pgrevoke cutoff)',
        exposure: false,
      },
    ];
  },
};
