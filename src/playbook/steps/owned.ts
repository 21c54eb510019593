// What reassign_owned and drop_owned share: both act on the role's objects in every database
// pg_shdepend lists for it, and both are looked for again after containment.
import type { ReportStep } from '../../record/cutoff-report.js';
import { STANDBY_DDL } from '../model.js';
import type { Run } from '../run.js';
import { OWNED_DATABASES_SQL } from '../sql.js';
import type { Draft, PlanContext } from './kind.js';

type OwnedAction = 'reassign_owned' | 'drop_owned';

/** The statement and the reason for one role in one database. */
export interface OwnedWork {
  action: OwnedAction;
  sql(role: string, run: { options: { reassignTo: string | null } }): string;
  reason(db: string, reassignTo: string | null): string;
}

export function planOwned(ctx: PlanContext, w: OwnedWork): void {
  if (ctx.standby) {
    ctx.add({ action: w.action, database: null, role: null, sql: [], reason: 'objects are catalog rows', skip: STANDBY_DDL });
    return;
  }
  for (const o of ctx.state.ownedDatabases) {
    const dbs = [...o.databases];
    // shared objects only (databases, tablespaces): one database covers them; DROP OWNED also revokes
    if ((o.shared || w.action === 'drop_owned') && dbs.length === 0) dbs.push(ctx.params.database);
    if (dbs.length === 0)
      ctx.add({
        action: w.action,
        database: null,
        role: o.role,
        sql: [],
        reason: 'pg_shdepend lists no object of the role',
        skip: 'the role owns nothing and holds no privileges',
      });
    for (const db of dbs)
      ctx.add({ action: w.action, database: db, role: o.role, sql: [w.sql(o.role, ctx)], reason: w.reason(db, ctx.options.reassignTo) });
  }
}

export async function refreshOwned(run: Run, have: readonly ReportStep[], w: OwnedWork): Promise<Draft[]> {
  const out: Draft[] = [];
  for (const t of run.targets)
    for (const o of (await run.reader.query<{ database: string | null; shared: boolean }>(OWNED_DATABASES_SQL, [t.oid])).rows)
      if (o.database && !o.shared && !have.some((h) => h.role === t.name && h.database === o.database))
        out.push({
          action: w.action,
          database: o.database,
          role: t.name,
          sql: [w.sql(t.name, run.plan)],
          reason: 'objects appeared in this database after the plan was made',
        });
  return out;
}

/** Run the step's statements as planned (reassign_owned, drop_owned, drop_role). */
export async function runPlanned(run: Run, step: ReportStep): Promise<string> {
  for (const sql of step.sql) await run.exec.run(step, sql);
  if (run.dry) return `would run in ${step.database ?? run.plan.node}`;
  run.changed = true;
  return `done${step.database ? ` in ${step.database}` : ''}`;
}
