// A lockout event as an audit line (src/record/audit.ts): one per lockout per node it took effect,
// was put back, expired or was unlocked on, with the address and the failure count SIEM rules want.
import type { AuditEntry, AuditOperator, AuditReason } from '../record/audit.js';
import type { LockoutEvent } from './types.js';

export interface LockoutAuditEntry extends AuditEntry {
  address: string | null;
  count: number;
  lockout: { id: string; kind: string; since: string; until: string; knocks: number };
}

const REMOVED = { address: 'hba_remove', address_ban: 'hba_remove', role: 'login_restored' } as const;
const ADDED = { address: 'hba_reject', address_ban: 'hba_reject', role: 'nologin' } as const;

/** The audit line of an event, or null for events that change nothing (failures, caps). */
export function lockoutAuditEntry(e: LockoutEvent, operator: AuditOperator, note?: string | null): LockoutAuditEntry | null {
  const l = e.lockout;
  if (!l) return null;
  let reason: AuditReason;
  let action: string;
  if (e.event === 'lockout' || e.event === 'reapplied') {
    reason = l.kind === 'address_ban' ? 'address_ban' : 'lockout';
    action = e.event === 'reapplied' ? `${ADDED[l.kind]}_again` : ADDED[l.kind];
  } else if (e.event === 'expired' || e.event === 'unlocked' || e.event === 'login_kept') {
    reason = (l.ended?.why ?? (e.event === 'unlocked' ? 'unlock' : 'expired')) === 'unlock' ? 'unlock' : 'lockout_expired';
    action = e.event === 'login_kept' ? 'login_kept' : REMOVED[l.kind];
  } else return null;
  return {
    time: e.time,
    node: e.node ?? '',
    operator,
    // an address ban has no role: the empty name, never a role's
    target: l.role ?? '',
    action,
    reason,
    result: 'done',
    detail: e.detail,
    address: l.address,
    count: l.count,
    lockout: { id: l.id, kind: l.kind, since: l.since, until: l.until, knocks: l.knocks },
    ...(note ? { note } : {}),
  };
}
