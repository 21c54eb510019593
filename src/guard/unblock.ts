// A tick blocked by a lock on a system catalog (55P03): who holds it (a session, or a prepared
// transaction), and which holders the guard may end, decided from what it remembers of roles
// (KnownRole, learnt from earlier ticks: sessions seen and deny-listed roles) since pg_authid may be
// the very table that is locked. Pure: guardUnblock and GUARD_PREPARED (sql.ts) read and terminate,
// unblock-actions.ts runs them and acts on what is decided here.
import type { AuditEntry, AuditOperator, AuditReason } from '../record/audit.js';
import type { GuardKill, GuardRollback } from './types.js';
import type { GuardPreparedRow, GuardRules, GuardUnblockRow, KnownRole } from './sql.js';
import { queryText } from '../pg/redact.js';

/** The shared catalogs (and pg_class, pg_namespace) by OID: naming them needs no pg_class read. */
const CATALOGS: Record<string, string> = {
  '1260': 'pg_authid',
  '1261': 'pg_auth_members',
  '1262': 'pg_database',
  '1213': 'pg_tablespace',
  '1214': 'pg_shdepend',
  '2396': 'pg_shdescription',
  '2964': 'pg_db_role_setting',
  '3592': 'pg_shseclabel',
  '6000': 'pg_replication_origin',
  '6100': 'pg_subscription',
  '6243': 'pg_parameter_acl',
  '1259': 'pg_class',
  '2615': 'pg_namespace',
  '1255': 'pg_proc',
  '1247': 'pg_type',
};

export function describeLocks(locks: readonly string[]): string {
  return locks.map((l) => l.replace(/relation (\d+)$/, (m, oid: string) => CATALOGS[oid] ?? m)).join(', ');
}

/** Why a known role's sessions must end, in the tick's order; null when nothing says so. */
export function endReason(role: KnownRole, rules: GuardRules): { reason: AuditReason; detail: string } | null {
  if (role.name !== null && rules.exclude.includes(role.name)) return null;
  if (role.state === 'dropped') return { reason: 'role_dropped', detail: `role oid ${role.oid} no longer exists (dropped)` };
  if (role.state === 'nologin') return { reason: 'role_nologin', detail: 'role has NOLOGIN' };
  if (role.state === 'expired') return { reason: 'role_expired', detail: 'role VALID UNTIL has passed' };
  if (role.name !== null && rules.deny.includes(role.name)) return { reason: 'denylisted', detail: 'role is on the deny list' };
  return null;
}

/** The OIDs (int8 text) whose lock-holding sessions guardUnblock ends: revoked or denied, and signallable. */
export function endableOids(
  known: ReadonlyMap<string, KnownRole>,
  rules: GuardRules,
  me: { superuser: boolean; signalBackend: boolean },
): string[] {
  const out: string[] = [];
  for (const role of known.values())
    if (endReason(role, rules) && (me.superuser || (!role.superuser && me.signalBackend))) out.push(role.oid);
  return out;
}

/** One holder as the kill event (and audit line) of a guard action. */
export function holderKill(
  h: GuardUnblockRow,
  role: KnownRole,
  why: { reason: AuditReason; detail: string },
  node: string,
  time: string,
  dryRun: boolean,
): GuardKill {
  return {
    time,
    node,
    pid: h.pid,
    role: role.name,
    usesysid: Number(h.usesysid),
    database: null,
    client: h.client,
    application: h.application,
    backendType: h.backend_type,
    state: h.state,
    backendStart: h.backend_start,
    reason: why.reason,
    detail: `${why.detail}; it held ${describeLocks(h.locks)}, which blocked the guard's tick`,
    query: queryText(h.query),
    terminated: h.terminated,
    dryRun,
  };
}

function describeRole(oid: string | null, role: KnownRole | undefined): string {
  return role
    ? `role ${role.name === null ? '(dropped)' : JSON.stringify(role.name)}, oid ${oid}${role.superuser ? ', superuser' : ''}`
    : `oid ${oid ?? '-'}, a role unknown to the guard: no session of it seen and not a deny-listed role before the lock`;
}

/** `pid 123 (role "evil", oid 16384, superuser): AccessExclusiveLock on pg_authid: ended` */
export function describeHolder(h: GuardUnblockRow, role: KnownRole | undefined, ended: string): string {
  return `pid ${h.pid} (${describeRole(h.usesysid, role)}): ${describeLocks(h.locks)}: ${ended}`;
}

/** `prepared transaction "x" (role "evil", oid 16384, superuser; database oid 5, prepared ...): AccessExclusiveLock on pg_authid: rolled back` */
export function describePrepared(p: GuardPreparedRow, role: KnownRole | undefined, said: string): string {
  const where = `database oid ${p.database_oid}${p.here ? " (the guard's)" : ''}, prepared ${p.prepared ?? '?'}`;
  return `prepared transaction ${JSON.stringify(p.gid)} (${describeRole(p.owner, role)}; ${where}): ${describeLocks(p.locks)}: ${said}`;
}

export type PreparedVerdict = { rollback: true; why: { reason: AuditReason; detail: string } } | { rollback: false; said: string };

/**
 * Whether the guard rolls back a prepared transaction holding a catalog lock: only when its owner
 * (the role that prepared it, by OID; a group the owner is in cannot be told without pg_authid) is
 * revoked or denied, it was prepared in the guard's own database (ROLLBACK PREPARED runs only
 * there), and the guard is a superuser (the only role that may finish another role's transaction).
 */
export function preparedVerdict(
  p: GuardPreparedRow,
  role: KnownRole | undefined,
  rules: GuardRules,
  me: { superuser: boolean },
): PreparedVerdict {
  const why = role ? endReason(role, rules) : null;
  if (!role) return { rollback: false, said: 'left alone' };
  if (!why) return { rollback: false, said: 'not revoked nor denied: left alone' };
  if (!p.here)
    return {
      rollback: false,
      said: `${why.detail}, but ROLLBACK PREPARED runs only in the database it was prepared in (a guard or a session there, opened before the lock): left alone`,
    };
  if (!me.superuser)
    return { rollback: false, said: `${why.detail}, but ROLLBACK PREPARED of another role's transaction takes a superuser: left alone` };
  return { rollback: true, why };
}

/** One prepared transaction as the rollback event (and audit line) of a guard action. */
export function preparedRollback(
  p: GuardPreparedRow,
  role: KnownRole,
  why: { reason: AuditReason; detail: string },
  node: string,
  time: string,
  dryRun: boolean,
): GuardRollback {
  return {
    time,
    node,
    gid: p.gid,
    role: role.name,
    usesysid: Number(p.owner),
    databaseOid: Number(p.database_oid),
    prepared: p.prepared,
    locks: describeLocks(p.locks),
    reason: why.reason,
    detail: `${why.detail}; its prepared transaction held ${describeLocks(p.locks)}, which blocked the guard's tick`,
    rolledBack: !dryRun,
    dryRun,
  };
}

/** The audit line of a rollback: action rollback_prepared (as cutoff's step), the transaction instead of a session. */
export function rollbackAuditEntry(r: GuardRollback, operator: AuditOperator): AuditEntry & { prepared: Record<string, unknown> } {
  return {
    time: r.time,
    node: r.node,
    operator,
    target: r.role ?? '',
    action: 'rollback_prepared',
    reason: r.reason,
    result: 'done',
    detail: r.detail,
    prepared: { gid: r.gid, ownerOid: r.usesysid, databaseOid: r.databaseOid, prepared: r.prepared, locks: r.locks },
  };
}
