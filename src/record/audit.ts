// The audit log: one JSON line per action, appended (never through a link) to a file created
// 0600. The reason vocabulary is shared by every command that ends access (cutoff, kill, guard).
import { appendSafe } from './safe-write.js';

/** Why access was ended. Stable strings: SIEM rules match on them. */
export const AUDIT_REASONS = [
  'compromise',
  'offboarding',
  'admin_kill',
  'role_nologin',
  'role_dropped',
  'role_expired',
  'denylisted',
  'idle_timeout',
  // guard --on-membership-revoked: a member's sessions ended after it lost a role it could SET ROLE to
  'membership_revoked',
  // failed-login lockouts (src/lockout/): a pair or role locked, an address banned, and the ends
  'lockout',
  'address_ban',
  'unlock',
  'lockout_expired',
  // pgrevoke serve: an identity provider reactivated someone (on_reactivate: restore undoes their cutoff)
  'reactivation',
] as const;
export type AuditReason = (typeof AUDIT_REASONS)[number];

export interface AuditOperator {
  dbUser: string;
  osUser: string;
  host: string;
}

export interface AuditEntry {
  time: string;
  node: string;
  operator: AuditOperator;
  /** The role acted on (exact name). */
  target: string;
  action: string;
  reason: AuditReason;
  result: string;
  detail: string | null;
  /** A `sql` step (the playbook's own statements): the statements it ran, as run. */
  statements?: string[];
  /** The operator's own words (--reason), when given. */
  note?: string;
}

/**
 * Append entries as JSON lines (appendSafe: created 0600, a link or another user's file refused).
 * Returns the line to print when an existing log readable by others was tightened to 0600, else null.
 */
export async function appendAudit(file: string, entries: readonly AuditEntry[]): Promise<string | null> {
  if (entries.length === 0) return null;
  const text = entries.map((e) => JSON.stringify(e)).join('\n') + '\n';
  const { tightenedFrom } = await appendSafe(file, text);
  if (tightenedFrom === null) return null;
  const was = tightenedFrom.toString(8).padStart(4, '0');
  return `audit log ${file} was mode ${was}, open to its group or others: tightened to 0600, as it holds query texts`;
}
