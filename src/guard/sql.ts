// The one statement `pgrevoke guard` runs per node and tick: find every session that must end, say
// why (in SQL), and terminate it in the same round trip. Fixed text; every name and limit travels as
// an array parameter. Guard-only, hence here rather than in src/playbook/sql.ts (cutoff's builders).
import { literal } from '../pg/quote.js';
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
  /** null on a row that only names a deny-listed role (no session of it is needed to learn its OID). */
  pid: number | null;
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
  /** null: no reason to end it; the row is there because its role_key is new to the guard. */
  reason: GuardReason | null;
  valid_until: string | null;
  /** Seconds since state_change while idle / idle in transaction; null otherwise. */
  idle_seconds: number | null;
  /** The limit that applied (seconds) and where it came from; null when none. */
  limit_seconds: number | null;
  limit_source: 'role' | 'database' | null;
  /** The guard's own role may signal this backend (postgres-facts.md section 4). */
  may_signal: boolean;
  terminated: boolean;
  /** `OID:STATE[+super]:NAME` (STATE login, nologin, expired or dropped): see parseRoleKey. */
  role_key: string;
}

export type GuardReason = 'role_dropped' | 'role_nologin' | 'role_expired' | 'denylisted' | 'idle_timeout';

/** What the guard remembers of a role from its sessions, for when pg_authid cannot be read. */
export interface KnownRole {
  key: string;
  oid: string;
  state: 'login' | 'nologin' | 'expired' | 'dropped';
  superuser: boolean;
  /** null when dropped. */
  name: string | null;
}

export function parseRoleKey(key: string): KnownRole {
  const a = key.indexOf(':');
  const b = key.indexOf(':', a + 1);
  const flags = key.slice(a + 1, b);
  const state = flags.replace('+super', '') as KnownRole['state'];
  return { key, oid: key.slice(0, a), state, superuser: flags.endsWith('+super'), name: state === 'dropped' ? null : key.slice(b + 1) };
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
// $7/$8 idle-in-transaction by database, $9/$10 idle-in-transaction by role; $11 role keys known.
const lookup = (names: number, secs: number, key: string) =>
  `(SELECT t.s FROM unnest($${names}::text[], $${secs}::float8[]) AS t(k, s) WHERE t.k = ${key} LIMIT 1)`;

const IN_TX = list(IDLE_STATES.filter((s) => s !== 'idle'));

/** `addr:port`, `[v6]:port`, `local` or null, from a row `a` of pg_stat_activity or pg_stat_get_activity. */
const CLIENT = `CASE WHEN a.client_port = -1 THEN 'local'
              WHEN a.client_addr IS NULL THEN NULL
              WHEN family(a.client_addr) = 6 THEN '[' || host(a.client_addr) || ']:' || a.client_port
              ELSE host(a.client_addr) || ':' || a.client_port END`;

// pg_get_userbyid reads the role through the syscache: computing it for every session (and every
// deny-listed role) each tick keeps each role's pg_authid row cached in the guard's backend, which
// is what lets pg_terminate_backend (it looks the target's role up) end a session while pg_authid is locked.
const roleKey = (oid: string) => `${oid}::int8::text || ':' ||
           CASE WHEN r.oid IS NULL THEN 'dropped' WHEN NOT r.rolcanlogin THEN 'nologin'
                WHEN r.rolvaliduntil < now() THEN 'expired' ELSE 'login' END ||
           CASE WHEN r.rolsuper THEN '+super' ELSE '' END || ':' || pg_get_userbyid(${oid})`;
const ROLE_KEY = roleKey('a.usesysid');

/**
 * The deny-listed roles themselves, sessions or not, as rows with only role, usesysid and role_key:
 * so that the guard knows a denied role's OID before it is locked out of pg_authid, even when the
 * role's first session takes the lock in its first round trip (no tick ever saw that session).
 */
const DENIED_ROLES = `SELECT NULL::int AS pid, d.role, d.usesysid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL::float8, NULL::float8, NULL, false, d.role_key, false
FROM (SELECT r.rolname::text AS role, r.oid::int8::text AS usesysid, ${roleKey('r.oid')} AS role_key
      FROM pg_roles r WHERE r.rolname::text = ANY($1::text[])) d
WHERE d.role_key <> ALL($11::text[])`;

const SELECT_MATCHES = `SELECT a.pid, r.rolname::text AS role, a.usesysid::int8::text AS usesysid, a.datname::text AS database,
         ${CLIENT} AS client, ${ROLE_KEY} AS role_key,
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
 * dry run it is not in the text at all. A row without a reason comes back only when its role_key is
 * not among `known` (the first session of a role, or one whose name or state changed): the guard
 * remembers roles that way at almost no cost, and role_key comes first in the WHERE so that every
 * session's pg_get_userbyid runs (see ROLE_KEY). Deny-listed roles come back the same way, without
 * a session (DENIED_ROLES): every tick, so a reloaded list is resolved by the next one.
 */
export function guardTick(rules: GuardRules, opts: { dryRun: boolean; known?: readonly string[] }): GuardQuery {
  const terminated = opts.dryRun
    ? 'false'
    : 'CASE WHEN s.reason IS NOT NULL AND s.may_signal THEN pg_terminate_backend(s.pid) ELSE false END';
  const text = `SELECT s.pid, s.role, s.usesysid, s.database, s.client, s.application, s.backend_type, s.state, s.backend_start,
       s.query, s.reason, s.valid_until, s.idle_seconds, s.limit_seconds, s.limit_source, s.may_signal, s.role_key,
       ${terminated} AS terminated
FROM (${SELECT_MATCHES}) s
WHERE s.role_key <> ALL($11::text[]) OR s.reason IS NOT NULL
UNION ALL
${DENIED_ROLES}
ORDER BY pid`;
  const values = [
    [...rules.deny],
    [...rules.exclude],
    ...pairs(rules.idle.databases),
    ...pairs(rules.idle.roles),
    ...pairs(rules.idleInTransaction.databases),
    ...pairs(rules.idleInTransaction.roles),
    [...(opts.known ?? [])],
  ];
  return { name: opts.dryRun ? 'pgrevoke_guard_tick_dry' : 'pgrevoke_guard_tick', text, values };
}

/**
 * Who the guard is on this node, and what it may do; also bounds its own statements server-side:
 * statement_timeout 5 s, and $1 the lock_timeout (so that a lock on a catalog its tick reads
 * fails the tick with 55P03 instead of stalling it; see guardUnblock).
 */
export const GUARD_SETUP = `SELECT current_user::text AS "user", current_setting('server_version') AS version,
       pg_is_in_recovery() AS standby, current_setting('is_superuser') = 'on' AS superuser,
       pg_has_role('pg_signal_backend', 'USAGE') AS signal_backend,
       pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats,
       set_config('statement_timeout', '5s', false) AS statement_timeout,
       set_config('lock_timeout', $1::text, false) AS lock_timeout`;

export interface GuardSetupRow {
  user: string;
  version: string;
  standby: boolean;
  superuser: boolean;
  signal_backend: boolean;
  read_all_stats: boolean;
}

/** A lock row `l` of pg_lock_status() on a system catalog: a shared one (database 0), or any relation below FirstNormalObjectId. */
const ON_CATALOG = `(l.database = 0 OR (l.locktype = 'relation' AND l.relation::int8 < 16384))`;
/** What a holder holds, e.g. `AccessExclusiveLock on relation 1260` (relation names would need pg_class). */
const CATALOG_LOCKS = `array_agg(DISTINCT l.mode || ' on ' || CASE WHEN l.locktype = 'relation' THEN 'relation ' || l.relation::int8
         ELSE l.locktype || ' ' || COALESCE(l.classid::int8, 0) || '/' || COALESCE(l.objid::int8, 0) END) AS locks`;

/**
 * When the tick timed out on a lock (55P03): every session holding a lock on a system catalog (a
 * shared one has database 0; any relation below FirstNormalObjectId 16384 is a catalog), with
 * what it holds, and pg_terminate_backend for those whose role OID is in $1. Read from
 * pg_lock_status() and pg_stat_get_activity() alone: pg_locks' and pg_stat_activity's views join
 * pg_authid and pg_database, which the holder may have locked. The guard prepares this statement
 * when it connects, so running it needs no parsing (hence no catalog lookups) under the lock. A dry
 * run has no pg_terminate_backend in its text (its $1 is still bound, so both texts take it).
 */
export function guardUnblock(opts: { dryRun: boolean }): { name: string; text: string } {
  const terminated = opts.dryRun ? 'false' : 'CASE WHEN a.usesysid::int8 = ANY($1::int8[]) THEN pg_terminate_backend(a.pid) ELSE false END';
  return {
    name: opts.dryRun ? 'pgrevoke_guard_unblock_dry' : 'pgrevoke_guard_unblock',
    text: `SELECT a.pid, a.usesysid::int8::text AS usesysid, ${CLIENT} AS client,
       a.application_name AS application, a.backend_type, a.state, a.backend_start::text AS backend_start, a.query, h.locks,
       ${terminated} AS terminated
FROM (SELECT l.pid, ${CATALOG_LOCKS}
      FROM pg_lock_status() l
      WHERE l.granted AND l.pid <> pg_backend_pid() AND ${ON_CATALOG}
      GROUP BY l.pid) h
JOIN pg_stat_get_activity(NULL::int) a ON a.pid = h.pid
WHERE $1::int8[] IS NOT NULL
ORDER BY a.pid`,
  };
}

/** A session holding a catalog lock, as guardUnblock lists it (its role cannot be read under the lock). */
export interface GuardUnblockRow extends Pick<
  GuardRow,
  'client' | 'application' | 'backend_type' | 'state' | 'backend_start' | 'query' | 'terminated'
> {
  pid: number;
  usesysid: string | null;
  /** e.g. `AccessExclusiveLock on relation 1260` (relation names would need pg_class). */
  locks: string[];
}

/**
 * With guardUnblock: the prepared transactions holding locks on system catalogs. They have no
 * backend (pid NULL in pg_lock_status()), so each is found through its own transactionid lock,
 * whose virtualtransaction its relation locks share. pg_prepared_xact() rather than the
 * pg_prepared_xacts view, and the guard's database OID from pg_stat_get_activity(), because the
 * view and pg_database may be what is locked. Prepared at connect, like guardUnblock; read-only.
 */
export const GUARD_PREPARED = {
  name: 'pgrevoke_guard_prepared',
  text: `SELECT p.gid, p.ownerid::int8::text AS owner, p.dbid::int8::text AS database_oid, p.prepared::text AS prepared, h.locks,
       p.dbid = (SELECT me.datid FROM pg_stat_get_activity(pg_backend_pid()) me) AS here
FROM pg_prepared_xact() p
JOIN pg_lock_status() x ON x.locktype = 'transactionid' AND x.transactionid = p.transaction AND x.pid IS NULL
JOIN (SELECT l.virtualtransaction, ${CATALOG_LOCKS}
      FROM pg_lock_status() l
      WHERE l.granted AND l.pid IS NULL AND ${ON_CATALOG}
      GROUP BY l.virtualtransaction) h ON h.virtualtransaction = x.virtualtransaction
ORDER BY p.prepared, p.gid`,
};

/** A prepared transaction holding a catalog lock, as GUARD_PREPARED lists it. */
export interface GuardPreparedRow {
  gid: string;
  /** The role that prepared it (int8 text); its name cannot be read under the lock. */
  owner: string;
  database_oid: string;
  prepared: string | null;
  locks: string[];
  /** Prepared in the guard's own database: the only one where its ROLLBACK PREPARED can run. */
  here: boolean;
}

/** The one statement that ends a prepared transaction; the gid is a literal (the command takes no parameter). */
export function rollbackPrepared(gid: string): string {
  return `ROLLBACK PREPARED ${literal(gid)}`;
}
