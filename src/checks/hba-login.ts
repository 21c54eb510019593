// The one decision role.ts (inspect) and verify share: may pg_hba.conf, as it is in force, let the
// role in (for an expired role: without a password, since VALID UNTIL refuses password methods only)?
import { rejectedEverywhere } from '../hba/evaluate.js';
import { hbaAllowsWithoutPassword, notInForceCaveat } from './hba.js';
import type { RoleFacts } from './types.js';

export type HbaLoginVerdict =
  /** Provably no way in: every line that may match rejects it (or, expired, asks for a password). */
  | { kind: 'blocked'; reason: string }
  /** A decision admits it. */
  | { kind: 'open'; reason: string }
  /** Neither can be shown: the rules in force are unknown, or a line may admit it. */
  | { kind: 'unknown'; reason: string };

/** Why the rules read are not known to be the rules in force, or null when they are. */
function notKnownInForce(f: RoleFacts): string | null {
  if (!f.hba.readable) return `pg_hba.conf is unreadable (${f.hba.unreadableReason ?? 'no access'})`;
  const caveat = notInForceCaveat(f.hba);
  if (caveat) return caveat;
  // the view shows the file on disk: without knowing it was reloaded, it may not be what is in force
  if (f.hba.reloadPending === null) return 'whether pg_hba.conf was changed after the last reload could not be checked';
  return null;
}

export function hbaLoginVerdict(f: RoleFacts): HbaLoginVerdict {
  const unknown = notKnownInForce(f);
  if (unknown) return { kind: 'unknown', reason: unknown };
  const passwordless = f.role.expired;
  const allows = passwordless ? hbaAllowsWithoutPassword(f.hba) : f.hba.decisions.filter((d) => d.outcome === 'allow');
  if (allows.length) {
    const lines = [...new Set(allows.map((d) => `line ${d.line} (${d.authMethod})`))].join(', ');
    return { kind: 'open', reason: `pg_hba.conf admits it through ${lines}` };
  }
  const r = rejectedEverywhere({
    rules: f.hba.rules,
    role: f.role.name,
    memberOf: f.memberships.memberOf.map((m) => m.role),
    replication: f.role.replication || f.role.superuser, // a superuser may stream without REPLICATION
    regexTokens: f.server.major >= 16,
    passwordless,
  });
  return r.rejected ? { kind: 'blocked', reason: r.reason } : { kind: 'unknown', reason: r.reason };
}
