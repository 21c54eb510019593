// sessions.hidden: backends past authentication but not yet in pg_stat_activity (postgres-facts.md, section 3).
// PG<=17 shows them only as virtualxid lock holders; PG18 lists them with state 'starting'.
import type { Check, HiddenBackend, Queryable } from './types.js';

const VIRTUALXID_SQL = `
SELECT DISTINCT l.pid, 'virtualxid' AS via, NULL::text AS backend_start, NULL::text AS client_addr
FROM pg_locks l
WHERE l.locktype = 'virtualxid' AND l.pid IS NOT NULL AND l.pid <> pg_backend_pid()
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid)`;

// PG18: a privileged viewer sees state 'starting'; an unprivileged one sees the row with every column
// NULL (backend_type too), so a virtualxid holder with such a row is the best it can say.
const STARTING_SQL = `
SELECT a.pid, 'starting' AS via, a.backend_start::text AS backend_start, host(a.client_addr) AS client_addr
FROM pg_stat_activity a
WHERE a.state = 'starting' AND a.usesysid IS NULL AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
UNION ALL
SELECT DISTINCT l.pid, 'virtualxid', NULL::text, NULL::text
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'virtualxid' AND a.usesysid IS NULL AND a.backend_type IS NULL AND l.pid <> pg_backend_pid()`;

export function hiddenBackendsSql(major: number): string {
  return major >= 18 ? `${STARTING_SQL}\nUNION ALL ${VIRTUALXID_SQL}` : VIRTUALXID_SQL;
}

/**
 * hiddenBackendsSql() for a server whose major is not known yet (read in the same round trip): the
 * PostgreSQL 18 part behind a one-time filter on server_version_num, so before 18 it is not run.
 */
export function hiddenBackendsAnyMajorSql(): string {
  return `SELECT * FROM (${STARTING_SQL}) s WHERE current_setting('server_version_num')::int >= 180000
UNION ALL ${VIRTUALXID_SQL}`;
}

interface HiddenResult {
  pid: number;
  via: 'virtualxid' | 'starting';
  backend_start: string | null;
  client_addr: string | null;
}

export async function collectHiddenBackends(q: Queryable, major: number): Promise<HiddenBackend[]> {
  const { rows } = await q.query<HiddenResult>(hiddenBackendsSql(major));
  return toHiddenBackends(rows);
}

/** hiddenBackendsSql()'s rows as the report holds them. */
export function toHiddenBackends(rows: readonly object[]): HiddenBackend[] {
  return (rows as HiddenResult[]).map((r) => ({ pid: r.pid, via: r.via, backendStart: r.backend_start, clientAddr: r.client_addr }));
}

export const hiddenBackendsCheck: Check = {
  ids: ['sessions.hidden'],
  evaluate(f) {
    if (f.hiddenBackends.length === 0) return [];
    return [
      {
        id: 'sessions.hidden',
        severity: 'high',
        title: `${f.hiddenBackends.length} backend(s) past authentication but not yet visible`,
        detail:
          `pids ${f.hiddenBackends.map((h) => h.pid).join(', ')}: not in pg_stat_activity yet (post_auth_delay, slow start-up); ` +
          'SQL cannot tell which role they belong to, and a NOLOGIN that commits now does not stop one that already passed the login check',
        remediation:
          'run pgrevoke cutoff, which re-scans after NOLOGIN and terminates only those that stay hidden; terminating a hidden backend needs superuser',
        exposure: false,
      },
    ];
  },
};
