// The one statement `pgrevoke guard` runs per node and tick: find every session that must end, say
// why (in SQL), and terminate it in the same round trip. Fixed text; every name and limit travels as
// an array parameter. Guard-only, hence here rather than in src/playbook/sql.ts (cutoff's builders).
import { literal, literalList } from '../pg/quote.js';
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
/** A session as the guard's statements return it (the tick's, and the membership pass's). */
export interface GuardSessionColumns {
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
}

export interface GuardRow extends GuardSessionColumns {
  /** null on a row that only names a deny-listed role (no session of it is needed to learn its OID). */
  pid: number | null;
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
// $7/$8 idle-in-transaction by database, $9/$10 idle-in-transaction by role; $11 role keys known;
// $12 the guard's other backends on the node (its lockout connection's), spared like its own.
// array_position is an expression: a subquery over unnest() here was one more subplan per use.
const lookup = (names: number, secs: number, key: string) => `($${secs}::float8[])[array_position($${names}::text[], ${key})]`;

const IN_TX = literalList(IDLE_STATES.filter((s) => s !== 'idle'));

/** `addr:port`, `[v6]:port`, `local` or null, from a row `a` of pg_stat_activity or pg_stat_get_activity. */
export const CLIENT = `CASE WHEN a.client_port = -1 THEN 'local'
              WHEN a.client_addr IS NULL THEN NULL
              WHEN family(a.client_addr) = 6 THEN '[' || host(a.client_addr) || ']:' || a.client_port
              ELSE host(a.client_addr) || ':' || a.client_port END`;

// pg_get_userbyid reads the role through the syscache: computing it for every role with a session
// (and every deny-listed role) each tick keeps each role's pg_authid row cached in the guard's backend,
// which is what lets pg_terminate_backend (it looks the target's role up) end a session while pg_authid is locked.
const roleKey = (oid: string) => `${oid}::int8::text || ':' ||
           CASE WHEN r.oid IS NULL THEN 'dropped' WHEN NOT r.rolcanlogin THEN 'nologin'
                WHEN r.rolvaliduntil < now() THEN 'expired' ELSE 'login' END ||
           CASE WHEN r.rolsuper THEN '+super' ELSE '' END || ':' || pg_get_userbyid(${oid})`;

/**
 * The deny-listed roles themselves, sessions or not, as rows with only role, usesysid and role_key:
 * so that the guard knows a denied role's OID before it is locked out of pg_authid, even when the
 * role's first session takes the lock in its first round trip (no tick ever saw that session).
 * The guard's own role comes back the same way: its own session is never a row, and a role whose
 * key stays unknown would have its sessions read in full at every tick (see PAIRS).
 */
const ROLES_BY_NAME = `SELECT NULL::int AS pid, d.role, d.usesysid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL::float8, NULL::float8, NULL, false, d.role_key, false
FROM (SELECT r.rolname::text AS role, r.oid::int8::text AS usesysid, ${roleKey('r.oid')} AS role_key
      FROM pg_roles r WHERE r.rolname::text = ANY($1::text[]) OR r.rolname = session_user) d
WHERE d.role_key <> ALL($11::text[])`;

/**
 * Every backend by its id in the backends' status, as (role OID, database OID): the per-backend
 * functions build no row of thirty columns (query text, client address, ...), which is what
 * pg_stat_get_activity() does for every backend and was most of a tick's cost with hundreds of
 * sessions. Every read of the backends' status in one transaction (here, in SUSPECTS and in
 * pg_stat_get_activity()) sees the same snapshot of it. Role OID 0: a backend without a role
 * (autovacuum, auxiliary processes, a PG18 one still starting).
 */
const BACKEND = (cols: string) => `SELECT ${cols} FROM pg_stat_get_backend_idset() AS i`;
const USER_DB = 'pg_stat_get_backend_userid(i) AS usesysid, pg_stat_get_backend_dbid(i) AS datid';

/**
 * Each (role, database) of the backends once, with its role as pg_roles has it and its role_key,
 * for every pair (see roleKey). `suspect`: a reason other than idleness may hold for its sessions
 * (revoked, denied), or its role is new to the guard. `idle_limit`: the shorter of its idle and
 * idle-in-transaction limits (a role's entry wins over its database's; 0 is none), or null. An
 * excluded role's pair is left out. The guard's own pair is in (it would take one more function
 * call per backend to leave it out); its own session never comes back (SUSPECTS).
 */
const PAIRS = `SELECT q.*,
         q.roid IS NULL OR NOT q.rolcanlogin OR q.rolvaliduntil < now() OR q.rolname = ANY($1::text[])
           OR q.role_key <> ALL($11::text[]) AS suspect,
         LEAST(NULLIF(COALESCE(${lookup(5, 6, 'q.rolname')}, ${lookup(3, 4, 'q.datname')}), 0),
               NULLIF(COALESCE(${lookup(9, 10, 'q.rolname')}, ${lookup(7, 8, 'q.datname')}), 0)) AS idle_limit
  FROM (SELECT p.usesysid, p.datid, d.datname::text AS datname, r.oid AS roid, r.rolname::text AS rolname,
               r.rolcanlogin, r.rolvaliduntil, r.rolsuper, ${roleKey('p.usesysid')} AS role_key
        FROM (SELECT * FROM (SELECT DISTINCT ${USER_DB} FROM pg_stat_get_backend_idset() AS i) u WHERE u.usesysid <> 0) p
        LEFT JOIN pg_roles r ON r.oid = p.usesysid
        LEFT JOIN pg_database d ON d.oid = p.datid) q
  WHERE q.rolname IS NULL OR q.rolname <> ALL($2::text[])`;

/** The pairs whose sessions may have a reason. */
const SUSPECT_PAIRS = 'SELECT * FROM k WHERE k.suspect OR k.idle_limit IS NOT NULL';

/**
 * The sessions a reason may hold for, never the guard's own: those of suspect pairs, and those of
 * pairs with an idle limit whose last statement began (or, none yet, whose session began) longer
 * than that limit ago, since a session's state_change is never before its query_start: one that
 * ran a statement more recently cannot be idle past its limit. Where the guard may not see those
 * times (null), the session is read. The backends are walked again only when some pair may have
 * a reason (the EXISTS is uncorrelated: it gates the whole scan).
 */
const SUSPECTS = `SELECT b.pid, k.* FROM (${SUSPECT_PAIRS}) k
  JOIN (${BACKEND(`i, pg_stat_get_backend_pid(i) AS pid, ${USER_DB}`)} WHERE EXISTS (${SUSPECT_PAIRS})) b
    ON b.usesysid = k.usesysid AND b.datid = k.datid
  WHERE b.pid <> pg_backend_pid() AND b.pid <> ALL($12::int[])
    AND (k.suspect OR NOT COALESCE(pg_stat_get_backend_activity_start(b.i), pg_stat_get_backend_start(b.i))
                          >= now() - k.idle_limit * interval '1 second')`;

/** The columns of pg_stat_get_activity() the tick reads. */
const ACTIVITY =
  'a.pid, a.usesysid, a.application_name, a.backend_type, a.state, a.state_change, a.backend_start, a.query, a.client_addr, a.client_port';
/** Suspects up to this many are read one by one (pg_stat_get_activity(pid)); more, in one pass over every backend. */
export const READ_ONE_BY_ONE = 32;

/**
 * The suspects' rows of pg_stat_get_activity(). Each call with a pid walks the backends but builds
 * one row: cheap for a few, quadratic for hundreds; past READ_ONE_BY_ONE suspects one call builds
 * every backend's row instead. The count is an uncorrelated subquery, so each branch is gated as
 * a whole: only one of them runs.
 */
const SUSPECT_ACTIVITY = `SELECT ${ACTIVITY} FROM c CROSS JOIN LATERAL pg_stat_get_activity(c.pid) a
  WHERE (SELECT count(*) FROM c) <= ${READ_ONE_BY_ONE}
  UNION ALL
  SELECT ${ACTIVITY} FROM pg_stat_get_activity(NULL::int) a
  WHERE (SELECT count(*) FROM c) > ${READ_ONE_BY_ONE} AND a.pid IN (SELECT c.pid FROM c)`;

/** A suspect session `c` read in full (`a`) and its reason, if any. */
const SELECT_MATCHES = `SELECT a.pid, c.rolname AS role, a.usesysid::int8::text AS usesysid, c.datname AS database,
         ${CLIENT} AS client, c.role_key,
         a.application_name AS application, a.backend_type, a.state, a.backend_start::text AS backend_start, a.query,
         c.rolvaliduntil::text AS valid_until,
         CASE WHEN a.state IN (${literalList(IDLE_STATES)})
              THEN GREATEST(0, EXTRACT(epoch FROM now() - a.state_change))::float8 END AS idle_seconds,
         COALESCE(lim.by_role, lim.by_database) AS limit_seconds,
         CASE WHEN lim.by_role IS NOT NULL THEN 'role' WHEN lim.by_database IS NOT NULL THEN 'database' END AS limit_source,
         CASE
           WHEN c.roid IS NULL THEN 'role_dropped'
           WHEN NOT c.rolcanlogin THEN 'role_nologin'
           WHEN c.rolvaliduntil < now() THEN 'role_expired'
           WHEN c.rolname = ANY($1::text[]) THEN 'denylisted'
           WHEN COALESCE(lim.by_role, lim.by_database) > 0
                AND a.state_change < now() - COALESCE(lim.by_role, lim.by_database) * interval '1 second' THEN 'idle_timeout'
         END AS reason,
         me.su OR (NOT COALESCE(c.rolsuper, false) AND (me.sig OR (c.roid IS NOT NULL AND pg_has_role(c.roid, 'USAGE')))) AS may_signal
  FROM c
  JOIN a ON a.pid = c.pid
  CROSS JOIN (SELECT current_setting('is_superuser') = 'on' AS su, pg_has_role('pg_signal_backend', 'USAGE') AS sig) me
  CROSS JOIN LATERAL (SELECT
      CASE WHEN a.state = 'idle' THEN ${lookup(5, 6, 'c.rolname')}
           WHEN a.state IN (${IN_TX}) THEN ${lookup(9, 10, 'c.rolname')} END AS by_role,
      CASE WHEN a.state = 'idle' THEN ${lookup(3, 4, 'c.datname')}
           WHEN a.state IN (${IN_TX}) THEN ${lookup(7, 8, 'c.datname')} END AS by_database) lim
  WHERE a.backend_type IN (${literalList(CLIENT_BACKEND_TYPES)}) OR a.backend_type IS NULL`;

function tickText(dryRun: boolean): string {
  const terminated = dryRun ? 'false' : 'CASE WHEN s.reason IS NOT NULL AND s.may_signal THEN pg_terminate_backend(s.pid) ELSE false END';
  return `WITH k AS MATERIALIZED (${PAIRS}),
c AS MATERIALIZED (${SUSPECTS}),
a AS MATERIALIZED (${SUSPECT_ACTIVITY})
SELECT s.pid, s.role, s.usesysid, s.database, s.client, s.application, s.backend_type, s.state, s.backend_start,
       s.query, s.reason, s.valid_until, s.idle_seconds, s.limit_seconds, s.limit_source, s.may_signal, s.role_key,
       ${terminated} AS terminated
FROM (${SELECT_MATCHES}) s
WHERE s.role_key <> ALL($11::text[]) OR s.reason IS NOT NULL
UNION ALL
${ROLES_BY_NAME}
ORDER BY pid`;
}

/** Built once: pg compares a prepared statement's text at every execution, and a tick runs every interval. */
const TICK_TEXT = { live: tickText(false), dry: tickText(true) };

/**
 * The tick statement. Only client backends and walsenders (a NULL backend_type is what an operator
 * without pg_read_all_stats sees of another role's client), never the guard's own backend, never a
 * backend without a role (a PG18 'starting' one), never an excluded role; a row only when a reason
 * holds. Reasons in order: role_dropped (OID gone from pg_roles), role_nologin, role_expired (VALID
 * UNTIL passed, whatever the auth method), denylisted, idle_timeout. Every backend is looked at
 * every tick, but cheaply (BACKEND, PAIRS); only the sessions a reason may hold for are read in
 * full (SUSPECTS). pg_terminate_backend runs only where the guard's role may signal (otherwise it
 * would raise and abort the whole statement); in a dry run it is not in the text at all. A row
 * without a reason comes back only when its role_key is not among `known` (the first session of a
 * role, or one whose name or state changed): the guard remembers roles that way at almost no cost.
 * Deny-listed roles come back the same way, without a session (ROLES_BY_NAME): every tick, so a
 * reloaded list is resolved by the next one.
 */
export function guardTick(rules: GuardRules, opts: { dryRun: boolean; known?: readonly string[]; spared?: readonly number[] }): GuardQuery {
  const values = [
    [...rules.deny],
    [...rules.exclude],
    ...pairs(rules.idle.databases),
    ...pairs(rules.idle.roles),
    ...pairs(rules.idleInTransaction.databases),
    ...pairs(rules.idleInTransaction.roles),
    opts.known ?? [],
    opts.spared ?? [],
  ];
  return opts.dryRun
    ? { name: 'pgrevoke_guard_tick_dry', text: TICK_TEXT.dry, values }
    : { name: 'pgrevoke_guard_tick', text: TICK_TEXT.live, values };
}

/**
 * Who the guard is on this node, and what it may do; also bounds its own statements server-side:
 * statement_timeout 5 s, and $1 the lock_timeout (so that a lock on a catalog its tick reads
 * fails the tick with 55P03 instead of stalling it; see guardUnblock).
 */
export const GUARD_SETUP = `SELECT current_user::text AS "user", current_setting('server_version') AS version,
       current_setting('server_version_num')::int / 10000 AS major,
       pg_is_in_recovery() AS standby, current_setting('is_superuser') = 'on' AS superuser,
       pg_has_role('pg_signal_backend', 'USAGE') AS signal_backend,
       pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats,
       set_config('statement_timeout', '5s', false) AS statement_timeout,
       set_config('lock_timeout', $1::text, false) AS lock_timeout`;

export interface GuardSetupRow {
  user: string;
  version: string;
  /** The server's major version (read once per connection, for what the passes after the tick build). */
  major: number;
  standby: boolean;
  superuser: boolean;
  signal_backend: boolean;
  read_all_stats: boolean;
}

/**
 * The lockout's own connection (lockout-conn.ts): the guard's statement_timeout, and the server's
 * system identifier, which keys the saved log position (lockout-cursor.ts) with the node's name: a
 * node rebuilt under the same name is another server. NULL where pg_control_system() is not granted.
 */
export const LOCKOUT_SETUP = `SELECT set_config('statement_timeout', '5s', false) AS statement_timeout, pg_backend_pid() AS pid,
       current_setting('log_directory') AS log_directory,
       CASE WHEN has_function_privilege('pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier::text FROM pg_control_system()) END AS system_identifier`;

export interface LockoutSetupRow {
  /** Its backend: the tick spares it (lockout-own.ts). */
  pid: number;
  /** Where the server's log files are: a saved position elsewhere is not this log's. */
  log_directory: string;
  system_identifier: string | null;
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
