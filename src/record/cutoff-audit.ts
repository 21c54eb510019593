// The audit lines a cutoff writes, built from its report: one per action and target, and one per
// PgBouncer console command. A record, not a rendering, so it sits beside the audit log's model.
import { AUDIT_REASONS, type AuditEntry, type AuditReason } from './audit.js';
import type { CutoffReport } from './cutoff-report.js';
import type { FleetCutoffReport } from './fleet-report.js';

/** One audit line per action and target; planned steps (a dry run) are not actions. */
export function auditEntries(r: CutoffReport, note?: string | null): AuditEntry[] {
  const reason = auditReasonOf(r.playbook.reason);
  const out: AuditEntry[] = [];
  for (const st of r.steps) {
    if (st.status === 'planned') continue;
    const targets = st.role !== null ? [st.role] : r.roles.map((x) => x.name);
    for (const target of targets)
      out.push({
        time: st.startedAt ?? r.finishedAt ?? r.startedAt,
        node: r.node,
        operator: { dbUser: r.operator.user, osUser: r.operator.osUser, host: r.operator.host },
        target,
        action: st.action,
        reason,
        result: st.status,
        detail: st.detail,
        ...(st.action === 'sql' ? { statements: st.executed } : {}),
        ...(note ? { note } : {}),
      });
  }
  return out;
}

/** A playbook's reason as an audit reason (the schema enforces the vocabulary; 'compromise' otherwise). */
export function auditReasonOf(reason: string | undefined): AuditReason {
  return reason !== undefined && (AUDIT_REASONS as readonly string[]).includes(reason) ? (reason as AuditReason) : 'compromise';
}

/** Audit lines for the commands run on PgBouncer consoles (node = the console). */
export function pgbouncerAuditEntries(r: FleetCutoffReport, reason: AuditReason, note?: string | null): AuditEntry[] {
  return r.pgbouncer.flatMap((s) =>
    s.actions
      .filter((a) => a.status !== 'planned')
      .flatMap((a) =>
        r.roles.map((target) => ({
          time: a.at ?? r.finishedAt,
          node: s.node,
          operator: { dbUser: s.inspection ? 'console' : '-', osUser: r.operator.osUser, host: r.operator.host },
          target,
          action: `pgbouncer_${a.kind}`,
          reason,
          result: a.status,
          detail: `${a.command}${a.detail ? `: ${a.detail}` : ''}`,
          ...(note ? { note } : {}),
        })),
      ),
  );
}
