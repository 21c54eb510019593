// rollback_prepared: a prepared transaction outlives every session and keeps its locks; roll back
// each of the role's, in its database. Looked for again after containment.
import type { z as Z } from 'zod';
import { collectPrepared, describePrepared, ONLY_OWNER_OR_SUPERUSER, rollbackAdvice } from '../../checks/prepared-xacts.js';
import { ident, literal } from '../../pg/quote.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import { STANDBY_DDL } from '../model.js';
import type { Run } from '../run.js';
import { rollbackPrepared } from '../sql.js';
import { mustFollow, StepSkipped, type Draft, type PlanContext, type RestoreContext, type StepKind } from './kind.js';

const fields = (_z: typeof Z) => ({});

/** Why a non-superuser operator's rollback of `p` cannot run (the plan's skip and apply's, alike). */
export function cannotRollBack(user: string, p: { gid: string; database: string }): string {
  return `not possible: ${user} is not a superuser, and ${ONLY_OWNER_OR_SUPERUSER}; it keeps its locks until a superuser runs ${rollbackAdvice(p)}`;
}

function planRollback(ctx: PlanContext): void {
  const { state, operator, standby } = ctx;
  const reason = 'prepared transactions outlive every session and keep their locks';
  if (standby || state.prepared.length === 0)
    ctx.add({
      action: 'rollback_prepared',
      database: null,
      role: null,
      sql: [],
      reason,
      skip: standby ? STANDBY_DDL : 'no prepared transaction of the role (checked again after containment)',
    });
  if (standby) return;
  for (const p of state.prepared) {
    // it would fail with 42501: say so before the run, and leave it on the exposure list
    const blocked = operator.superuser ? null : cannotRollBack(operator.user, p);
    if (blocked) ctx.expose(`prepared transaction of ${JSON.stringify(p.role)} ${describePrepared(p)}: ${blocked}`);
    ctx.add({
      action: 'rollback_prepared',
      database: p.database,
      role: p.role,
      gid: p.gid,
      sql: blocked ? [] : [rollbackPrepared(p.gid)],
      reason: `prepared ${p.prepared}, holds ${p.locks} lock(s); must run in its database`,
      skip: blocked,
    });
  }
}

async function refresh(run: Run, have: readonly ReportStep[]): Promise<Draft[]> {
  const out: Draft[] = [];
  for (const t of run.targets)
    for (const p of await collectPrepared(run.reader, t.name))
      if (!have.some((h) => h.gid === p.gid))
        out.push({
          action: 'rollback_prepared',
          database: p.database,
          role: t.name,
          gid: p.gid,
          sql: [rollbackPrepared(p.gid)],
          reason: 'prepared after the plan was made',
        });
  return out;
}

async function applyRollback(run: Run, step: ReportStep): Promise<string> {
  const { operator } = run.plan;
  // one found after containment: the plan skips the others for the same reason (42501 otherwise)
  if (!operator.superuser) {
    const why = cannotRollBack(operator.user, { gid: step.gid!, database: step.database! });
    run.expose(`prepared transaction of ${JSON.stringify(step.role)} ${literal(step.gid!)} in ${ident(step.database!)}: ${why}`);
    throw new StepSkipped(why);
  }
  try {
    await run.exec.run(step, rollbackPrepared(step.gid!));
  } catch (err) {
    if ((err as { code?: string }).code === '42704')
      throw new StepSkipped(`prepared transaction '${step.gid}' no longer exists (committed or rolled back meanwhile)`);
    throw err;
  }
  if (run.dry) return `would roll back '${step.gid}' in ${step.database}`;
  run.changed = true;
  return `rolled back '${step.gid}' in ${step.database}; its locks are released`;
}

export const rollbackPreparedStep = {
  action: 'rollback_prepared',
  fields,
  order: mustFollow('contain'),
  plan: planRollback,
  refresh,
  apply: applyRollback,
  inverse: (ctx: RestoreContext) =>
    ctx.report.steps.some((s) => s.action === 'rollback_prepared' && s.status === 'done')
      ? { notes: ['rolled-back prepared transactions cannot be restored'] }
      : {},
} satisfies StepKind<typeof fields>;
