// A session the guard ends, as it reports it: the kill event built from a tick row, the words for
// why, and the audit line (the same for a session ended by a tick and a lock holder ended by unblock).
import { queryText } from '../pg/redact.js';
import type { AuditEntry } from '../record/audit.js';
import type { GuardReason, GuardRow, GuardSessionColumns } from './sql.js';
import type { GuardAuditEntry, GuardKill } from './types.js';

/** A tick row that has a reason (the others only tell the guard about a role). */
export type ReasonRow = GuardRow & { reason: GuardReason; pid: number };

function fmtSeconds(s: number): string {
  return Number.isInteger(s) ? `${s}s` : `${s.toFixed(s < 10 ? 1 : 0)}s`;
}

/** Why, in words, for the audit line and the human output. */
export function describeReason(r: ReasonRow): string {
  switch (r.reason) {
    case 'role_dropped':
      return `role oid ${r.usesysid} no longer exists (dropped)`;
    case 'role_nologin':
      return 'role has NOLOGIN';
    case 'role_expired':
      return `role VALID UNTIL ${r.valid_until ?? '?'} has passed`;
    case 'denylisted':
      return 'role is on the deny list';
    case 'idle_timeout': {
      const where = r.limit_source === 'role' ? `role ${JSON.stringify(r.role)}` : `database ${JSON.stringify(r.database)}`;
      return `${r.state ?? 'idle'} for ${fmtSeconds(r.idle_seconds ?? 0)}, limit ${fmtSeconds(r.limit_seconds ?? 0)} (${where})`;
    }
  }
}

export function toKill(r: ReasonRow, node: string, time: string, dryRun: boolean): GuardKill {
  return killEvent(r, { reason: r.reason, detail: describeReason(r) }, node, time, dryRun);
}

/** A kill event from a session row of either guard statement, with why it was ended. */
export function killEvent(
  r: GuardSessionColumns & { pid: number; terminated: boolean },
  why: Pick<GuardKill, 'reason' | 'detail'>,
  node: string,
  time: string,
  dryRun: boolean,
): GuardKill {
  return {
    time,
    node,
    pid: r.pid,
    role: r.role,
    usesysid: Number(r.usesysid),
    database: r.database,
    client: r.client,
    application: r.application,
    backendType: r.backend_type,
    state: r.state,
    backendStart: r.backend_start,
    reason: why.reason,
    detail: why.detail,
    query: queryText(r.query),
    terminated: r.terminated,
    dryRun,
  };
}

export function guardAuditEntry(k: GuardKill, operator: AuditEntry['operator'], result: 'done' | 'denied', note?: string): GuardAuditEntry {
  return {
    time: k.time,
    node: k.node,
    operator,
    // the login role; '' when it was dropped (no role has an empty name): usesysid says which it was
    target: k.role ?? '',
    action: 'terminate',
    reason: k.reason,
    result,
    detail: note ? `${k.detail}; ${note}` : k.detail,
    session: {
      pid: k.pid,
      user: k.role,
      usesysid: k.usesysid,
      database: k.database,
      client: k.client,
      application: k.application,
      state: k.state,
      backendType: k.backendType,
      backendStart: k.backendStart,
      query: k.query,
    },
  };
}

/** Why the guard's role may not end that session. */
export function deniedMessage(k: GuardKill): string {
  if (k.role === null) return 'permission denied: the session of a dropped role takes a superuser or a member of pg_signal_backend';
  const role = JSON.stringify(k.role);
  return `permission denied: a session of role ${role} takes a superuser, a member of ${role} or of pg_signal_backend (a superuser's session: a superuser)`;
}
