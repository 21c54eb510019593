// disable_subscriptions: a subscription's apply worker keeps replicating as its owner after
// NOLOGIN; disable each of the role's, then end any worker restarted meanwhile.
import type { z as Z } from 'zod';
import type { ReportStep } from '../../record/cutoff-report.js';
import { STANDBY_DDL } from '../model.js';
import type { Run } from '../run.js';
import { disableSubscription, SUBSCRIPTIONS_SQL, terminate } from '../sql.js';
import { mustFollow, type Draft, type PlanContext, type RestoreContext, type StepKind } from './kind.js';

const fields = (_z: typeof Z) => ({});

function planDisable(ctx: PlanContext): void {
  const { state, standby } = ctx;
  const oids = ctx.targets.map((t) => t.oid);
  if (standby || state.subscriptions.length === 0)
    ctx.add({
      action: 'disable_subscriptions',
      database: null,
      role: null,
      sql: [],
      reason: 'an apply worker keeps replicating as the owner after NOLOGIN',
      skip: standby ? STANDBY_DDL : 'the role owns no subscription (checked again after containment)',
    });
  if (standby) return;
  for (const s of state.subscriptions)
    ctx.add({
      action: 'disable_subscriptions',
      database: s.database,
      role: s.role,
      subscription: s.name,
      sql: [disableSubscription(s.name), terminate(oids)],
      reason: `${s.enabled ? 'enabled' : 'already disabled'}; its apply worker runs as the owner; then end any worker restarted meanwhile`,
    });
}

async function refresh(run: Run, have: readonly ReportStep[]): Promise<Draft[]> {
  const out: Draft[] = [];
  for (const t of run.targets)
    for (const sub of (await run.reader.query<{ name: string; database: string }>(SUBSCRIPTIONS_SQL, [t.oid])).rows)
      if (!have.some((h) => h.subscription === sub.name && h.database === sub.database))
        out.push({
          action: 'disable_subscriptions',
          database: sub.database,
          role: t.name,
          subscription: sub.name,
          sql: [disableSubscription(sub.name), terminate(run.oids)],
          reason: 'created after the plan was made',
        });
  return out;
}

async function applyDisable(run: Run, step: ReportStep): Promise<string> {
  await run.exec.run(step, disableSubscription(step.subscription!));
  if (!run.dry) run.changed = true;
  const rows = (await run.exec.run(step, terminate(run.oids), { database: null }))[0]?.rows ?? [];
  run.recordTerminated(rows, false);
  if (run.dry) return `would disable subscription ${step.subscription} in ${step.database}`;
  return `disabled ${step.subscription} in ${step.database}${rows.length ? `; terminated ${rows.length} restarted worker(s)` : ''}`;
}

export const disableSubscriptionsStep = {
  action: 'disable_subscriptions',
  fields,
  order: mustFollow('contain'),
  plan: planDisable,
  refresh,
  apply: applyDisable,
  inverse: (ctx: RestoreContext) =>
    ctx.report.steps.some((s) => s.action === 'disable_subscriptions' && s.status === 'done')
      ? { notes: ['disabled subscriptions stay disabled: ALTER SUBSCRIPTION ... ENABLE after review'] }
      : {},
} satisfies StepKind<typeof fields>;
