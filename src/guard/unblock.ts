// A tick blocked by a lock on a system catalog (55P03): who holds it, and which holders the guard
// may end, decided from what it remembers of roles (KnownRole, learnt from earlier ticks) since
// pg_authid may be the very table that is locked. guardUnblock (sql.ts) reads and terminates.
import type { AuditReason } from '../report/audit.js';
import type { GuardKill } from './index.js';
import type { GuardRules, GuardUnblockRow, KnownRole } from './sql.js';

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
    query: h.query,
    terminated: h.terminated,
    dryRun,
  };
}

/** `pid 123 (role "evil", oid 16384, superuser): AccessExclusiveLock on pg_authid: ended` */
export function describeHolder(h: GuardUnblockRow, role: KnownRole | undefined, ended: string): string {
  const who = role
    ? `role ${role.name === null ? '(dropped)' : JSON.stringify(role.name)}, oid ${h.usesysid}${role.superuser ? ', superuser' : ''}`
    : `oid ${h.usesysid ?? '-'}, a role the guard has not seen (no session of it before the lock)`;
  return `pid ${h.pid} (${who}): ${describeLocks(h.locks)}: ${ended}`;
}
