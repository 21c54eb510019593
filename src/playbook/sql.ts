// The only place cutoff's write SQL is built. Pure builders: identifiers through ident(), values
// through literal() (DDL and the one simple-query round trip cannot take parameters), OIDs and
// pids validated as integers before they are spliced into array literals.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { administeredRolesSql } from '../checks/administered-roles.js';
import { hiddenBackendsAnyMajorSql, hiddenBackendsSql } from '../checks/hidden-backends.js';
import { blockingSql, roleLocksSql } from '../checks/locks.js';
import { preparedSql } from '../checks/prepared-xacts.js';
import { ACTIVITY_COLUMNS, roleSessionsSql } from '../checks/sessions.js';
import { ident, literal } from '../pg/quote.js';
import { registerGenerated } from '../pg/redact.js';
import { roleByNameSql } from '../pg/roles.js';
import { operatorSql, SERVER_SQL } from '../pg/server.js';

/** A statement to execute and the form that may be shown (they differ only where a secret sits). */
export interface Statement {
  sql: string;
  display: string;
}

export const MASK = "'*****'";

function plain(sql: string): Statement {
  return { sql, display: sql };
}

function checkOid(n: number): number {
  if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) throw new Error(`invalid OID: ${String(n)}`);
  return n;
}

function checkPid(n: number): number {
  if (!Number.isInteger(n) || n <= 0 || n > 0x7fffffff) throw new Error(`invalid pid: ${String(n)}`);
  return n;
}

/** `'{1,2}'::oid[]` from validated integers. */
export function oidArray(oids: readonly number[]): string {
  if (oids.length === 0) throw new Error('no role OIDs given');
  return `'{${oids.map(checkOid).join(',')}}'::oid[]`;
}

export function pidArray(pids: readonly number[]): string {
  if (pids.length === 0) throw new Error('no pids given');
  return `'{${pids.map(checkPid).join(',')}}'::int[]`;
}

export interface NologinTarget {
  name: string;
  superuser: boolean;
  createRole: boolean;
}

/**
 * One ALTER ROLE per target. A superuser or CREATEROLE target also loses those attributes: a live
 * superuser session could otherwise switch LOGIN back on before it is terminated.
 */
export function nologin(targets: readonly NologinTarget[], opts: { strip?: boolean } = {}): string[] {
  const strip = opts.strip ?? true;
  return targets.map((t) => {
    const extra = strip && (t.superuser || t.createRole) ? ' NOSUPERUSER NOCREATEROLE' : '';
    return `ALTER ROLE ${ident(t.name)} NOLOGIN CONNECTION LIMIT 0${extra}`;
  });
}

/** Undo for nologin(): the attributes recorded before the cutoff (the old password cannot come back). */
export function restoreRole(t: NologinTarget & { canLogin: boolean; connectionLimit: number }): string {
  const parts = [t.canLogin ? 'LOGIN' : 'NOLOGIN', `CONNECTION LIMIT ${Number.isInteger(t.connectionLimit) ? t.connectionLimit : -1}`];
  if (t.superuser) parts.push('SUPERUSER');
  if (t.createRole) parts.push('CREATEROLE');
  return `ALTER ROLE ${ident(t.name)} ${parts.join(' ')}`;
}

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677, PostgreSQL's stored format) for a password: the server
 * accepts it as is, so the cleartext never leaves this process, not even into a server log.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * A new random password (32 bytes, base64url) nobody is told: it only makes the old one useless.
 * The statement carries its SCRAM verifier; the shown form carries `'*****'`.
 */
export function rotatePassword(role: string, password: string = randomBytes(32).toString('base64url')): Statement {
  // never shown (display says '*****'); registered only as redact()'s last resort for error messages
  registerGenerated(password);
  const verifier = scramVerifier(password);
  registerGenerated(verifier);
  return { sql: `ALTER ROLE ${ident(role)} PASSWORD ${literal(verifier)}`, display: `ALTER ROLE ${ident(role)} PASSWORD ${MASK}` };
}

/**
 * Terminate every backend of the roles and return its forensic row from the same statement, so the
 * snapshot is what was running at the moment it was ended.
 */
export function terminate(oids: readonly number[]): string {
  return `SELECT ${ACTIVITY_COLUMNS}, pg_terminate_backend(a.pid) AS terminated
FROM pg_stat_activity a
WHERE a.usesysid = ANY(${oidArray(oids)}) AND a.pid <> pg_backend_pid()`;
}

/** Backends past authentication but not yet attributable (postgres-facts.md section 3). */
export function hiddenScan(major: number): string {
  return hiddenBackendsSql(major).trim();
}

/** Each role's login-relevant attributes, by OID (a rename does not hide it). */
export function roleState(oids: readonly number[]): string {
  return `SELECT oid::int8 AS oid, rolname, rolcanlogin, rolsuper, rolcreaterole, rolconnlimit
FROM pg_roles WHERE oid = ANY(${oidArray(oids)})`;
}

/**
 * Terminate hidden backends by pid, unless one has meanwhile become visible as a role other than
 * the targets (it was a bystander still logging in).
 */
export function terminatePids(pids: readonly number[], oids: readonly number[]): string {
  return `${LOCK_WAIT};
SELECT p.pid, pg_terminate_backend(p.pid) AS terminated
FROM unnest(${pidArray(pids)}) AS p(pid)
WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                  WHERE a.pid = p.pid AND a.usesysid IS NOT NULL AND a.usesysid <> ALL(${oidArray(oids)}))`;
}

function join(parts: string[]): string {
  return parts.join(';\n');
}

/** The statements of snapshotReads() per target, in the order their results come back. */
export const SNAPSHOT_PARTS = ['sessions', 'locks', 'blocking', 'prepared'] as const;

/**
 * The snapshot in one simple-query round trip (the attack goes on while it runs): per target its
 * sessions, locks, blocked sessions and prepared transactions (SNAPSHOT_PARTS), then the hidden
 * backends. The same queries inspect runs with parameters; here the OID and name are literals.
 */
export function snapshotReads(targets: readonly { oid: number; name: string }[], major: number): string {
  const per = targets.flatMap((t) => snapshotParts(`${checkOid(t.oid)}::oid`, t.name));
  return join([...per.map((q) => q.trim()), hiddenScan(major)]);
}

/** SNAPSHOT_PARTS for one role: its OID as an SQL expression, its name. */
function snapshotParts(oid: string, name: string): string[] {
  const owners = `ARRAY[${literal(name)}]::text[]`;
  return [roleSessionsSql(oid), roleLocksSql('role', { backends: oid, owners }), blockingSql(oid, owners), preparedSql(owners)];
}

// The insert position, not pg_current_wal_lsn(): with synchronous_commit = off the commit record may
// not be written yet, and a standby that has replayed up to here has replayed the commit.
export const COMMITTED_AT = 'SELECT clock_timestamp()::text AS committed_at, pg_current_wal_insert_lsn()::text AS commit_lsn';

/**
 * Flush the NOLOGIN commit at once even where synchronous_commit is off (so standbys receive it
 * without waiting for the WAL writer), but never wait for a synchronous standby: one that is down
 * would hang the containment statement.
 */
export const SYNC_LOCAL = 'SET LOCAL synchronous_commit = local';

/**
 * How long a containment statement waits for a lock before pgrevoke looks for who holds it: short,
 * because the holder may be the attacker (its own pg_authid row in an open transaction, or LOCK
 * TABLE pg_authid), and waiting is what it wants. A SET LOCAL lasts to the next COMMIT, so each
 * implicit transaction of a multi-statement round trip sets it again.
 */
export const LOCK_TIMEOUT_MS = 250;
export const LOCK_WAIT = `SET LOCAL lock_timeout = '${LOCK_TIMEOUT_MS}ms'`;

/** The cutoff session's own bound on every other lock wait (its reads: plan, snapshot, verification). */
export const SESSION_LOCK_TIMEOUT_MS = 1000;

/**
 * The bound on lock waits in the other databases (rollback_prepared, disable_subscriptions,
 * reassign_owned, drop_owned run there, after containment): what holds them up then is a bystander
 * or something the role left behind, and a failed step says so rather than waiting for ever.
 */
export const STEP_LOCK_TIMEOUT_MS = 10_000;

/** SQLSTATEs after which the containment statement is tried again once its blockers are dealt with. */
export const RETRY_SQLSTATES: ReadonlySet<string> = new Set([
  '55P03', // lock_not_available: lock_timeout ran out
  '40P01', // deadlock_detected
  'XX000', // "tuple concurrently updated": the row's holder committed an ALTER ROLE of its own
]);

/** Lock modes that block ALTER ROLE's RowExclusiveLock, or, on pg_authid itself, may hold its row. */
const BLOCKING_MODES = `l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
    OR (l.relation = 1260 AND l.mode IN ('RowShareLock', 'RowExclusiveLock'))`;

/**
 * After a containment statement timed out on a lock: every backend of the roles (they hold or queue
 * for what the ALTER needs) and every other holder of a system-catalog lock that can block it.
 * Reads neither pg_authid nor pg_stat_activity (a view over pg_authid and pg_database, which the
 * holder may have locked): pg_stat_get_activity() and pg_locks take no catalog lock.
 */
export function blockers(oids: readonly number[]): string {
  const targets = oidArray(oids);
  return `SELECT a.pid, a.usesysid::int8 AS usesysid, a.usesysid = ANY(${targets}) AS target, l.mode, l.relation::int8 AS relation,
       a.application_name, a.backend_type, a.state, a.backend_start::text AS backend_start, a.xact_start::text AS xact_start,
       host(a.client_addr) AS client_addr, a.query
FROM pg_stat_get_activity(NULL) a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.granted AND l.locktype = 'relation' AND l.relation < 16384
     AND l.database IN (0, (SELECT datid FROM pg_stat_get_activity(pg_backend_pid())))
     AND (${BLOCKING_MODES})
WHERE a.pid <> pg_backend_pid() AND (a.usesysid = ANY(${targets}) OR l.pid IS NOT NULL)`;
}

/**
 * Prepared transactions holding such a lock (a transaction that changed the role's own row, then
 * PREPARE TRANSACTION: it outlives every session), the target's when it or a role it is a member of
 * prepared it. Their locks have no pid; the transaction's own
 * transactionid lock ties them to it. pg_prepared_xact(), not the view, which reads pg_authid.
 */
export function preparedBlockers(oids: readonly number[]): string {
  const targets = oidArray(oids);
  // the owner is the current role at PREPARE: the target's after SET ROLE to a group it is in
  return `SELECT p.gid, p.ownerid::int8 AS usesysid,
       p.ownerid = ANY(${targets}) OR EXISTS (SELECT 1 FROM unnest(${targets}) AS t(oid) WHERE pg_has_role(t.oid, p.ownerid, 'MEMBER')) AS target,
       l.mode, l.relation::int8 AS relation,
       (SELECT datname FROM pg_database WHERE oid = p.dbid) AS database
FROM pg_prepared_xact() p
JOIN pg_locks x ON x.locktype = 'transactionid' AND x.transactionid = p.transaction AND x.pid IS NULL
JOIN pg_locks l ON l.virtualtransaction = x.virtualtransaction AND l.pid IS NULL AND l.granted AND l.locktype = 'relation'
     AND l.relation < 16384 AND l.database IN (0, (SELECT datid FROM pg_stat_get_activity(pg_backend_pid())))
     AND (${BLOCKING_MODES})`;
}

/**
 * End the listed backends. pg_terminate_backend() looks the backend's role up in pg_authid (is it a
 * superuser?), so under an ACCESS EXCLUSIVE lock on pg_authid it waits like everyone else: bounded.
 */
export function terminateListed(pids: readonly number[]): string {
  return `${LOCK_WAIT};\nSELECT p.pid, pg_terminate_backend(p.pid) AS terminated FROM unnest(${pidArray(pids)}) AS p(pid)`;
}

/** Names for the blockers found by blockers(): roles by OID, relations by OID (read once the lock is gone). */
export const BLOCKER_NAMES = `SELECT 'role' AS kind, r.oid::int8 AS oid, r.rolname::text AS name FROM pg_roles r WHERE r.oid = ANY($1::oid[])
UNION ALL SELECT 'relation', c.oid::int8, c.oid::regclass::text FROM pg_class c WHERE c.oid = ANY($2::oid[])`;

export interface ContainOptions {
  strip?: boolean;
  rotatePassword?: boolean;
}

/**
 * The critical round trip, one simple-query string: the ALTERs commit before any session is
 * terminated (an explicit COMMIT inside a multi-statement simple query commits what precedes it),
 * the terminate statement carries the snapshot, and the hidden set H0 is taken right after.
 * Results: the two SETs, one per ALTER, COMMIT, the lock timeout again, then the server time right
 * after the commit (every backend forked later is refused), the terminated rows, the hidden backends.
 */
export function contain(targets: readonly (NologinTarget & { oid: number })[], major: number, opts: ContainOptions = {}): Statement {
  const alters = nologin(targets, { strip: opts.strip }).map(plain);
  if (opts.rotatePassword) alters.push(...targets.map((t) => rotatePassword(t.name)));
  const tail = ['COMMIT', LOCK_WAIT, COMMITTED_AT, terminate(targets.map((t) => t.oid)), hiddenScan(major)];
  return {
    sql: join([SYNC_LOCAL, LOCK_WAIT, ...alters.map((a) => a.sql), ...tail]),
    display: join([SYNC_LOCAL, LOCK_WAIT, ...alters.map((a) => a.display), ...tail]),
  };
}

/**
 * The standby's containment round trip: no ALTER (a standby is read-only; NOLOGIN arrives by replay,
 * which await_replay waited for), terminate with the snapshot columns, then the hidden set H0.
 */
export function containStandby(oids: readonly number[], major: number): Statement {
  return plain(join([LOCK_WAIT, terminate(oids), hiddenScan(major)]));
}

/** Where a standby's replay stands against the primary's position after the NOLOGIN commit ($1). */
export const REPLAY_POSITION = `SELECT pg_last_wal_replay_lsn()::text AS replayed,
       pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up,
       GREATEST(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0)::float8 AS lag_bytes`;

/** One settle-loop round trip: terminate by OID again, re-scan hidden backends, re-read the roles. */
export function settleRound(oids: readonly number[], major: number): string {
  return join([LOCK_WAIT, terminate(oids), hiddenScan(major), roleState(oids)]);
}

/** Re-apply NOLOGIN after someone switched LOGIN back on; the hidden scan after the COMMIT adds suspects. */
export function reapply(targets: readonly NologinTarget[], major: number, opts: { strip?: boolean } = {}): string {
  return join([LOCK_WAIT, ...nologin(targets, opts), 'COMMIT', LOCK_WAIT, hiddenScan(major)]);
}

export function rollbackPrepared(gid: string): string {
  return `ROLLBACK PREPARED ${literal(gid)}`;
}

export function disableSubscription(name: string): string {
  return `ALTER SUBSCRIPTION ${ident(name)} DISABLE`;
}

export function reassignOwned(role: string, to: string): string {
  return `REASSIGN OWNED BY ${ident(role)} TO ${ident(to)}`;
}

export function dropOwned(role: string): string {
  return `DROP OWNED BY ${ident(role)}`;
}

export function dropRole(role: string): string {
  return `DROP ROLE ${ident(role)}`;
}

export const RELOAD_CONF = 'SELECT pg_reload_conf()';

/** Locks still held by the role's former backends ($1 int[]) or its prepared transactions (owners $2 text[]): inspect's query. */
export const LOCKS_REMAINING = roleLocksSql('pids').trim();

/** Which of the sessions blocked before ($1 int[]) still wait on a lock, and on whom. */
export const STILL_BLOCKED = `SELECT a.pid, a.usename, a.wait_event_type, pg_blocking_pids(a.pid) AS blocked_by
FROM pg_stat_activity a WHERE a.pid = ANY($1::int[]) AND a.wait_event_type = 'Lock'`;

/** pg_hba.conf rows the server could not parse (a reload with any of them keeps the old rules). */
export const HBA_ERRORS_SQL = `SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number`;

/** The reject rules for the targets as the server now reads the file ($1 text[] of role names). */
export const HBA_OURS_SQL = `SELECT line_number, type, user_name FROM pg_hba_file_rules
WHERE auth_method = 'reject' AND error IS NULL AND user_name && $1::text[] ORDER BY line_number`;

export const SERVER_HBA_CONTENT_SQL = `SELECT pg_read_file(current_setting('hba_file')) AS content`;

// The plan state's reads take the role's OID as an SQL expression (default: parameter $1).
const subscriptionsSql = (oid = '$1::oid') => `SELECT s.subname::text AS name, d.datname::text AS database, s.subenabled AS enabled
FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE s.subowner = ${oid} ORDER BY 2, 1`;
export const SUBSCRIPTIONS_SQL = subscriptionsSql();

// dbid 0 = shared objects (databases, tablespaces): REASSIGN OWNED in any one database covers them.
const ownedDatabasesSql = (oid = '$1::oid') => `SELECT DISTINCT d.datname::text AS database, sd.dbid = 0 AS shared
FROM pg_shdepend sd LEFT JOIN pg_database d ON d.oid = sd.dbid
WHERE sd.refclassid = 'pg_authid'::regclass AND sd.refobjid = ${oid} AND sd.deptype <> 'p'`;
export const OWNED_DATABASES_SQL = ownedDatabasesSql();

const adminOfSql = (oid = '$1::oid') => `SELECT pg_has_role(current_user, ${oid}, 'MEMBER WITH ADMIN OPTION') AS admin`;
export const ADMIN_OF_SQL = adminOfSql();

/** The statements of planReads() per role, in the order their results come back (after the server's row, when asked for). */
export const PLAN_PARTS = ['role', 'operator', 'administered', 'prepared', 'subscriptions', 'ownedDatabases', 'adminOf'] as const;

/** A role's OID by its exact name, as an SQL expression: NULL when no role has it. */
const oidByName = (name: string) => `(SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ${literal(name)})`;

/**
 * What a plan is made from in one simple-query round trip (the attack goes on while it runs): the
 * server's facts (`server`), then per role by its exact name PLAN_PARTS, then the --reassign-to role
 * (`reassignTo`), then with `snapshot` the snapshot's reads (snapshotReads(), by name; the hidden
 * scan for whichever major answers). A name no role has gives no role row, and NULL for its OID
 * in the other parts.
 */
export function planReads(names: readonly string[], opts: { server: boolean; reassignTo?: string | null; snapshot?: boolean }): string {
  const per = names.flatMap((name) => {
    const oid = oidByName(name);
    const owners = `ARRAY[${literal(name)}]::text[]`;
    return [
      roleByNameSql(literal(name)),
      operatorSql(oid),
      administeredRolesSql(oid),
      preparedSql(owners),
      subscriptionsSql(oid),
      ownedDatabasesSql(oid),
      adminOfSql(oid),
    ];
  });
  const reassign = opts.reassignTo === undefined || opts.reassignTo === null ? [] : [roleByNameSql(literal(opts.reassignTo))];
  const snapshot = opts.snapshot ? [...names.flatMap((name) => snapshotParts(oidByName(name), name)), hiddenBackendsAnyMajorSql()] : [];
  return join([...(opts.server ? [SERVER_SQL] : []), ...per, ...reassign, ...snapshot].map((q) => q.trim()));
}

/**
 * An event trigger runs its function as whoever runs the DDL: a sql step's session turns them off
 * (the setting exists from PostgreSQL 17, and only a superuser may set it).
 */
export const EVENT_TRIGGERS_OFF = 'SET event_triggers = off';

/** The event triggers a session's DDL would fire, where they cannot be turned off. */
export const ENABLED_EVENT_TRIGGERS = `SELECT evtname::text AS name, evtevent::text AS event, evtfoid::regprocedure::text AS function,
       pg_get_userbyid(evtowner)::text AS owner
FROM pg_event_trigger WHERE evtenabled <> 'D' ORDER BY evtname`;
