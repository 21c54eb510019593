// guard --on-membership-revoked on one node: probe pg_auth_members (one round trip, one short row
// while nothing changed), and when a member lost a role it could SET ROLE to, end every session of
// that member in one statement (membership-sql.ts), reported as the tick reports its kills: a
// GuardKill per session with reason membership_revoked, and its audit line (kill-event.ts).
import type { AuditOperator, AuditReason } from '../record/audit.js';
import { deniedMessage, guardAuditEntry, killEvent } from './kill-event.js';
import {
  byMember,
  describeLost,
  lostMemberships,
  type LostMembership,
  type MembershipEdge,
  type MembershipSnapshot,
} from './membership.js';
import { membershipKill, membershipProbe, type MembershipKillRow, type MembershipProbeRow } from './membership-sql.js';
import type { GuardAuditEntry, GuardClient, GuardKill } from './types.js';

export const MEMBERSHIP_REVOKED = 'membership_revoked' satisfies AuditReason;

export interface HoldoverOptions {
  /** The server's major version (pg_auth_members has set_option from 16 on). */
  major: number;
  dryRun: boolean;
  /** --exclude-role names: never touched. */
  exclude: readonly string[];
  /** The node's name, for the events. */
  node: string;
  /** Who acts, for the audit lines. */
  operator: AuditOperator;
  /** Client-side limit for each statement. */
  queryTimeoutMs?: number;
}

export interface HoldoverResult {
  /** Keep it for the next call; the previous one when nothing changed. */
  snapshot: MembershipSnapshot;
  /** The memberships lost since the previous snapshot ([] at the first call, or when nothing was). */
  lost: LostMembership[];
  /** Sessions ended (or that would be, dry run). */
  kills: GuardKill[];
  /** Sessions the guard's role may not end, with why. */
  denied: { kill: GuardKill; message: string }[];
  /** One line per kill and per denied session; none in a dry run. */
  audit: GuardAuditEntry[];
  /** Statements run: 1 (the probe), 2 when a member lost a membership (the kill). */
  statements: number;
}

/** The hash row of a probe's answer. */
function hashRow(rows: readonly MembershipProbeRow[]): { hash: string; n: number } {
  const r = rows.find((x) => x.hash !== null);
  if (!r || r.hash === null || r.n === null) throw new Error('the membership probe returned no hash');
  return { hash: r.hash, n: r.n };
}

/** The snapshot in a probe's rows (they hold the full catalog: the hash was not the one given). */
export function snapshotOf(rows: readonly MembershipProbeRow[]): MembershipSnapshot {
  const { hash, n } = hashRow(rows);
  const edges: MembershipEdge[] = [];
  const names = new Map<string, string>();
  for (const r of rows) {
    if (r.member === null || r.roleid === null) continue;
    edges.push({ member: r.member, role: r.roleid, canSet: r.can_set === true });
    if (r.member_name !== null) names.set(r.member, r.member_name);
    if (r.role_name !== null) names.set(r.roleid, r.role_name);
  }
  return { hash, count: n, edges, names };
}

function toMembershipKill(r: MembershipKillRow, lost: readonly LostMembership[], node: string, time: string, dryRun: boolean): GuardKill {
  return killEvent(r, { reason: MEMBERSHIP_REVOKED, detail: describeLost(lost) }, node, time, dryRun);
}

/**
 * One pass on one node: probe pg_auth_members against `prev` and, when members lost a membership
 * since, end their sessions (all of them: the one that ran SET ROLE cannot be told from the others).
 * `prev` null (the guard's first look at the node) only takes the snapshot. A statement that fails
 * rejects, and the caller keeps `prev`: the next pass sees the same change and tries again.
 */
export async function endMembershipHoldovers(
  client: GuardClient,
  prev: MembershipSnapshot | null,
  opts: HoldoverOptions,
): Promise<HoldoverResult> {
  const timeout = opts.queryTimeoutMs === undefined ? {} : { query_timeout: opts.queryTimeoutMs };
  const probe = await client.query<MembershipProbeRow>({ ...membershipProbe(opts.major), values: [prev?.hash ?? null], ...timeout });
  const none = { lost: [], kills: [], denied: [], audit: [] };
  if (prev && hashRow(probe.rows).hash === prev.hash) return { snapshot: prev, ...none, statements: 1 };
  const next = snapshotOf(probe.rows);
  const lost = prev ? lostMemberships(prev, next) : [];
  if (lost.length === 0) return { snapshot: next, ...none, statements: 1 };
  const members = byMember(lost);
  const kill = membershipKill({ dryRun: opts.dryRun });
  const { rows } = await client.query<MembershipKillRow>({ ...kill, values: [[...members.keys()], [...opts.exclude]], ...timeout });
  const time = new Date().toISOString();
  const result: HoldoverResult = { snapshot: next, lost, kills: [], denied: [], audit: [], statements: 2 };
  for (const r of rows) {
    // pg_terminate_backend false: the backend exited before the signal, nothing was done (as the tick)
    if (!opts.dryRun && r.may_signal && !r.terminated) continue;
    const k = toMembershipKill(r, members.get(r.usesysid) ?? [], opts.node, time, opts.dryRun);
    if (!opts.dryRun && !r.may_signal) {
      const message = deniedMessage(k);
      result.denied.push({ kill: k, message });
      result.audit.push(guardAuditEntry(k, opts.operator, 'denied', message));
    } else {
      result.kills.push(k);
      if (!opts.dryRun) result.audit.push(guardAuditEntry(k, opts.operator, 'done'));
    }
  }
  return result;
}
