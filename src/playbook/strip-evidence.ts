// Evidence that a cutoff took SUPERUSER/CREATEROLE from a role, which restore needs before it
// grants them back (a report's "before" alone is a claim). Kept apart from restore's schema so
// that cutoff, which records plans, does not load it.
import { ident } from '../pg/quote.js';

/** Whether the cutoff's contain statement took SUPERUSER/CREATEROLE away from `role`. */
export function strippedBy(report: { steps: readonly { action: string; sql: readonly string[] }[] }, role: string): boolean {
  const alter = `ALTER ROLE ${ident(role)} NOLOGIN`;
  return report.steps.some(
    (s) =>
      s.action === 'contain' && s.sql.some((q) => q.split(';\n').some((line) => line.startsWith(alter) && line.includes(' NOSUPERUSER'))),
  );
}
