// The one statement `pgrevoke guard` runs per node and tick: find every session that must end, say
// why (in SQL), and terminate it in the same round trip. Fixed text; every name and limit travels as
// an array parameter. Guard-only, hence here rather than in src/playbook/sql.ts (cutoff's builders).
import { CLIENT_BACKEND_TYPES, IDLE_STATES } from '../sessions/filters.js';

/** Per-database and per-role limits in seconds (0 = no limit; a role entry wins over its database's). */
export interface TimeoutRules {
  databases: ReadonlyMap<string, number>;
  roles: ReadonlyMap<string, number>;
}

export const NO_TIMEOUTS: TimeoutRules = { databases: new Map(), roles: new Map() };

export interface GuardRules {
  /** Exact role names whose sessions end on sight. */
  deny: readonly string[];
  /** Exact role names never touched, whatever the reason. */
  exclude: readonly string[];
  /** state = 'idle' for longer than the limit (time since its last statement ended). */
  idle: TimeoutRules;
  /** state = 'idle in transaction' or 'idle in transaction (aborted)' for longer than the limit. */
  idleInTransaction: TimeoutRules;
}

export interface GuardQuery {
  /** Prepared-statement name: the text is fixed per mode, so each connection parses and plans it once. */
  name: string;
  text: string;
  values: unknown[];
}

/** What one row of the tick statement looks like. */
export interface GuardRow {
  pid: number;
  /** Login role; null when the role was dropped. */
  role: string | null;
  /** The session's role OID (kept after DROP ROLE), as text-safe int8. */
  usesysid: string;
  database: string | null;
  /** `addr:port`, `[v6]:port`, `local` (Unix socket) or null. */
  client: string | null;
  application: string | null;
  backend_type: string | null;
  state: string | null;
  backend_start: string | null;
  query: string | null;
  reason: 'role_dropped' | 'role_nologin' | 'role_expired' | 'denylisted' | 'idle_timeout';
  valid_until: string | null;
  /** Seconds since state_change while idle / idle in transaction; null otherwise. */
  idle_seconds: number | null;
  /** The limit that applied (seconds) and where it came from; null when none. */
  limit_seconds: number | null;
  limit_source: 'role' | 'database' | null;
  /** The guard's own role may signal this backend (postgres-facts.md section 4). */
  may_signal: boolean;
  terminated: boolean;
}

const list = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

function pairs(m: ReadonlyMap<string, number>): [string[], number[]] {
  const names: string[] = [];
  const secs: number[] = [];
  for (const [k, v] of m) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`invalid timeout for ${JSON.stringify(k)}: ${String(v)}`);
    names.push(k);
    secs.push(v);
  }
  return [names, secs];
}

// $1 deny, $2 exclude, then (names, seconds) pairs: $3/$4 idle by database, $5/$6 idle by role,
// $7/$8 idle-in-transaction by database, $9/$10 idle-in-transaction by role.
const lookup = (names: number, secs: number, key: string) =>
  `(SELECT t.s FROM unnest($${names}::text[], $${secs}::float8[]) AS t(k, s) WHERE t.k = ${key} LIMIT 1)`;

const IN_TX = list(IDLE_STATES.filter((s) => s !== 'idle'));

const SELECT_MATCHES = `SELECT a.pid, r.rolname::text AS role, a.usesysid::int8::text AS usesysid, a.datname::text AS database,
         CASE WHEN a.client_port = -1 THEN 'local'
              WHEN a.client_addr IS NULL THEN NULL
              WHEN family(a.client_addr) = 6 THEN '[' || host(a.client_addr) || ']:' || a.client_port
              ELSE host(a.client_addr) || ':' || a.client_port END AS client,
         a.application_name AS application, a.backend_type, a.state, a.backend_start::text AS backend_start, a.query,
         r.rolvaliduntil::text AS valid_until,
         CASE WHEN a.state IN (${list(IDLE_STATES)})
              THEN GREATEST(0, EXTRACT(epoch FROM now() - a.state_change))::float8 END AS idle_seconds,
         COALESCE(lim.by_role, lim.by_database) AS limit_seconds,
         CASE WHEN lim.by_role IS NOT NULL THEN 'role' WHEN lim.by_database IS NOT NULL THEN 'database' END AS limit_source,
         CASE
           WHEN r.oid IS NULL THEN 'role_dropped'
           WHEN NOT r.rolcanlogin THEN 'role_nologin'
           WHEN r.rolvaliduntil < now() THEN 'role_expired'
           WHEN r.rolname::text = ANY($1::text[]) THEN 'denylisted'
           WHEN COALESCE(lim.by_role, lim.by_database) > 0
                AND a.state_change < now() - COALESCE(lim.by_role, lim.by_database) * interval '1 second' THEN 'idle_timeout'
         END AS reason,
         me.su OR (NOT COALESCE(r.rolsuper, false) AND (me.sig OR (r.oid IS NOT NULL AND pg_has_role(r.oid, 'USAGE')))) AS may_signal
  FROM pg_stat_activity a
  LEFT JOIN pg_roles r ON r.oid = a.usesysid
  CROSS JOIN (SELECT current_setting('is_superuser') = 'on' AS su, pg_has_role('pg_signal_backend', 'USAGE') AS sig) me
  CROSS JOIN LATERAL (SELECT
      CASE WHEN a.state = 'idle' THEN ${lookup(5, 6, 'r.rolname::text')}
           WHEN a.state IN (${IN_TX}) THEN ${lookup(9, 10, 'r.rolname::text')} END AS by_role,
      CASE WHEN a.state = 'idle' THEN ${lookup(3, 4, 'a.datname::text')}
           WHEN a.state IN (${IN_TX}) THEN ${lookup(7, 8, 'a.datname::text')} END AS by_database) lim
  WHERE a.pid <> pg_backend_pid()
    AND a.usesysid IS NOT NULL
    AND (a.backend_type IN (${list(CLIENT_BACKEND_TYPES)}) OR a.backend_type IS NULL)
    AND (r.rolname IS NULL OR r.rolname::text <> ALL($2::text[]))`;

/**
 * The tick statement. Only client backends and walsenders (a NULL backend_type is what an operator
 * without pg_read_all_stats sees of another role's client), never the guard's own backend, never a
 * backend without a role (a PG18 'starting' one), never an excluded role; a row only when a reason
 * holds. Reasons in order: role_dropped (OID gone from pg_roles), role_nologin, role_expired (VALID
 * UNTIL passed, whatever the auth method), denylisted, idle_timeout. pg_terminate_backend runs only
 * where the guard's role may signal (otherwise it would raise and abort the whole statement); in a
 * dry run it is not in the text at all.
 */
export function guardTick(rules: GuardRules, opts: { dryRun: boolean }): GuardQuery {
  const terminated = opts.dryRun ? 'false' : 'CASE WHEN s.may_signal THEN pg_terminate_backend(s.pid) ELSE false END';
  const text = `SELECT s.pid, s.role, s.usesysid, s.database, s.client, s.application, s.backend_type, s.state, s.backend_start,
       s.query, s.reason, s.valid_until, s.idle_seconds, s.limit_seconds, s.limit_source, s.may_signal,
       ${terminated} AS terminated
FROM (${SELECT_MATCHES}) s
WHERE s.reason IS NOT NULL
ORDER BY s.pid`;
  const values = [
    [...rules.deny],
    [...rules.exclude],
    ...pairs(rules.idle.databases),
    ...pairs(rules.idle.roles),
    ...pairs(rules.idleInTransaction.databases),
    ...pairs(rules.idleInTransaction.roles),
  ];
  return { name: opts.dryRun ? 'pgrevoke_guard_tick_dry' : 'pgrevoke_guard_tick', text, values };
}

/** Who the guard is on this node, and what it may do; also bounds its own statements server-side. */
export const GUARD_SETUP = `SELECT current_user::text AS "user", current_setting('server_version') AS version,
       pg_is_in_recovery() AS standby, current_setting('is_superuser') = 'on' AS superuser,
       pg_has_role('pg_signal_backend', 'USAGE') AS signal_backend,
       pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats,
       set_config('statement_timeout', '5s', false) AS statement_timeout`;

export interface GuardSetupRow {
  user: string;
  version: string;
  standby: boolean;
  superuser: boolean;
  signal_backend: boolean;
  read_all_stats: boolean;
}
