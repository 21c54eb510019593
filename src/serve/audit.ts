// pgrevoke serve's audit lines: the shared line model (src/record/audit.ts) plus the event it is
// about, one line per step of an event's life: received, mapped (or unmapped), each cutoff step on
// each node (the cutoff's own lines), the outcome. A SIEM can follow one event by `event.id`.
import type { AuditEntry, AuditReason } from '../record/audit.js';
import type { OutcomeStatus } from './journal.js';
import type { ServeEvent, ServeIdentity } from './types.js';

export interface ServeAuditEntry extends AuditEntry {
  event: { id: string; provider: ServeEvent['provider']; key: string; action: ServeEvent['action']; identity: ServeIdentity };
}

/** The identity as one string: its SCIM userName, its GitHub login, or `-`. */
export function identityLabel(i: ServeIdentity): string {
  return i.user ?? (i.github !== undefined ? `github:${i.github}` : '-');
}

export interface AuditBase {
  osUser: string;
  host: string;
  /** The reason of a deactivation's lines: the playbook's, `offboarding` for the default playbook's `compromise`. */
  reason: AuditReason;
}

/** A line about `e` (not about one node: node `-`); `target` defaults to the identity. */
export function serveLine(
  base: AuditBase,
  e: ServeEvent,
  line: { action: string; result: string; detail: string | null; target?: string },
): ServeAuditEntry {
  return {
    time: new Date().toISOString(),
    node: '-',
    operator: { dbUser: '-', osUser: base.osUser, host: base.host },
    target: line.target ?? identityLabel(e.identity),
    action: line.action,
    reason: e.action === 'reactivate' ? 'reactivation' : base.reason,
    result: line.result,
    detail: line.detail,
    event: { id: e.id, provider: e.provider, key: e.key, action: e.action, identity: e.identity },
  };
}

/** A cutoff's own lines (per step, node and role), tagged with the event and the serve reason. */
export function tagged(base: AuditBase, e: ServeEvent, lines: readonly AuditEntry[]): ServeAuditEntry[] {
  const ev = serveLine(base, e, { action: '', result: '', detail: null }).event;
  return lines.map((l) => ({ ...l, reason: base.reason, event: ev }));
}

/** received: provider, key, identity, what the adapter said it was; `duplicate` for a redelivery. */
export function receivedLine(base: AuditBase, e: ServeEvent, duplicate: boolean): ServeAuditEntry {
  return serveLine(base, e, {
    action: 'serve_received',
    result: duplicate ? 'duplicate' : 'accepted',
    detail: `${e.provider} ${e.action}: ${e.summary}${duplicate ? ' (delivered again: not run twice)' : ''}`,
  });
}

/** mapped: the roles, or unmapped (acknowledged, no action, flagged). */
export function mappedLine(base: AuditBase, e: ServeEvent, roles: string[] | null, why: string | null): ServeAuditEntry {
  return serveLine(base, e, {
    action: 'serve_mapped',
    result: roles ? 'mapped' : 'unmapped',
    detail: roles
      ? `roles ${roles.map((r) => JSON.stringify(r)).join(', ')}`
      : `unmapped (${why ?? 'no identities rule matches'}): acknowledged, nothing done (flagged)`,
  });
}

/** The outcome of the event's cutoff or restore. */
export function outcomeLine(
  base: AuditBase,
  e: ServeEvent,
  status: OutcomeStatus | 'retry',
  detail: string | null,
  target?: string,
): ServeAuditEntry {
  return serveLine(base, e, {
    action: e.action === 'reactivate' ? 'serve_restore' : 'serve_cutoff',
    result: status,
    detail,
    ...(target !== undefined ? { target } : {}),
  });
}
