// prepared_xacts: two-phase transactions survive every session ending and keep their locks.
import { ident, literal } from '../pg/quote.js';
import type { Check, PreparedXact, Queryable } from './types.js';

const PREPARED_SQL = `
SELECT p.gid, p.database, p.transaction::text AS transaction, p.prepared::text AS prepared,
       extract(epoch FROM now() - p.prepared)::float8 AS age_seconds,
       (SELECT count(*)::int FROM pg_locks l WHERE l.pid IS NULL AND l.virtualtransaction = x.virtualtransaction) AS locks
FROM pg_prepared_xacts p
LEFT JOIN pg_locks x ON x.pid IS NULL AND x.locktype = 'transactionid' AND x.transactionid = p.transaction
WHERE p.owner = $1 ORDER BY p.prepared`;

export async function collectPrepared(q: Queryable, roleName: string): Promise<PreparedXact[]> {
  const { rows } = await q.query<{
    gid: string;
    database: string;
    transaction: string;
    prepared: string;
    age_seconds: number;
    locks: number;
  }>(PREPARED_SQL, [roleName]);
  return rows.map((r) => ({
    gid: r.gid,
    database: r.database,
    transaction: r.transaction,
    prepared: r.prepared,
    ageSeconds: r.age_seconds,
    locks: r.locks,
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
        remediation: f.preparedTransactions.map((p) => `in ${ident(p.database)}: ROLLBACK PREPARED ${literal(p.gid)}`).join('; '),
        exposure: true,
      },
    ];
  },
};
