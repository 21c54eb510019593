// prepared_xacts: two-phase transactions survive every session ending and keep their locks.
import { ident, literal } from '../pg/quote.js';
import type { Check, PreparedXact, Queryable } from './types.js';
import { lockDescription, preparedVxids } from './locks.js';

// holds: what each lock is on, so that a transaction nobody here may finish can be named with it
/** The prepared transactions of the owners named by `owners`, a text[] SQL expression (default: parameter $1). */
export function preparedSql(owners = '$1::text[]'): string {
  return `
WITH ${preparedVxids(owners)}
SELECT p.gid, p.database, p.transaction::text AS transaction, p.prepared::text AS prepared,
       extract(epoch FROM now() - p.prepared)::float8 AS age_seconds,
       (SELECT count(*)::int FROM pg_locks l WHERE l.pid IS NULL AND l.virtualtransaction = px.vxid) AS locks,
       ARRAY(SELECT ${lockDescription('l')}
             FROM pg_locks l WHERE l.pid IS NULL AND l.virtualtransaction = px.vxid ORDER BY l.locktype, 1) AS holds
FROM pg_prepared_xacts p LEFT JOIN px ON px.gid = p.gid
WHERE p.owner = ANY(${owners}) ORDER BY p.prepared`;
}

const PREPARED_SQL = preparedSql();

/** twophase.c: COMMIT/ROLLBACK PREPARED by anyone else fails with 42501, membership in the owner or not. */
export const ONLY_OWNER_OR_SUPERUSER = 'only a superuser or the role that prepared it may COMMIT or ROLLBACK PREPARED';

/** `'gid' in db, holding N lock(s): ...`: what a responder needs to find it and see what it blocks. */
export function describePrepared(p: Pick<PreparedXact, 'gid' | 'database' | 'locks' | 'holds'>): string {
  return `${literal(p.gid)} in ${ident(p.database)}, holding ${p.locks} lock(s)${p.holds.length ? `: ${p.holds.join(', ')}` : ''}`;
}

/** The statement that releases it, and where it must run. */
export function rollbackAdvice(p: Pick<PreparedXact, 'gid' | 'database'>): string {
  return `in ${ident(p.database)}: ROLLBACK PREPARED ${literal(p.gid)}`;
}

interface PreparedResult {
  gid: string;
  database: string;
  transaction: string;
  prepared: string;
  age_seconds: number;
  locks: number;
  holds: string[];
}

export async function collectPrepared(q: Queryable, roleName: string): Promise<PreparedXact[]> {
  const { rows } = await q.query<PreparedResult>(PREPARED_SQL, [[roleName]]);
  return toPreparedXacts(rows);
}

/** preparedSql()'s rows as the report holds them. */
export function toPreparedXacts(rows: readonly object[]): PreparedXact[] {
  return (rows as PreparedResult[]).map((r) => ({
    gid: r.gid,
    database: r.database,
    transaction: r.transaction,
    prepared: r.prepared,
    ageSeconds: r.age_seconds,
    locks: r.locks,
    holds: r.holds,
  }));
}

export const preparedXactsCheck: Check = {
  ids: ['prepared_xacts'],
  evaluate(f) {
    if (f.preparedTransactions.length === 0) return [];
    const list = f.preparedTransactions.map((p) => `'${p.gid}' in ${p.database} (${Math.round(p.ageSeconds)} s old, ${p.locks} locks)`);
    return [
      {
        id: 'prepared_xacts',
        severity: 'critical',
        title: `${f.preparedTransactions.length} prepared transaction(s) owned by the role`,
        detail: `${list.join('; ')}; they outlive every session and keep their locks`,
        remediation: f.preparedTransactions.map(rollbackAdvice).join('; '),
        exposure: true,
      },
    ];
  },
};
