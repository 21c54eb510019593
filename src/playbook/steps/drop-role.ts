// drop_role: the role is gone (offboarding); its OID stays in the report. Needs reassign_owned and
// drop_owned before it, or DROP ROLE fails on what the role owns.
import type { z as Z } from 'zod';
import { STANDBY_DDL } from '../model.js';
import { dropRole } from '../sql.js';
import { mustFollow, type PlanContext, type StepKind } from './kind.js';
import { runPlanned } from './owned.js';

const fields = (_z: typeof Z) => ({});

function order(steps: readonly { action: string }[], at: number): string | null {
  const after = mustFollow('contain')(steps, at);
  if (after) return after;
  const i = (a: string) => steps.findIndex((s) => s.action === a);
  return i('reassign_owned') < 0 || i('drop_owned') < 0 || i('reassign_owned') > at || i('drop_owned') > at
    ? '"drop_role" needs "reassign_owned" and "drop_owned" before it'
    : null;
}

function planDropRole(ctx: PlanContext): void {
  if (ctx.standby) {
    ctx.add({ action: 'drop_role', database: null, role: null, sql: [], reason: 'roles are cluster-wide', skip: STANDBY_DDL });
    return;
  }
  for (const t of ctx.targets)
    ctx.add({
      action: 'drop_role',
      database: null,
      role: t.name,
      sql: [dropRole(t.name)],
      reason: 'the role is gone; its OID is kept in the report',
    });
}

export const dropRoleStep = {
  action: 'drop_role',
  fields,
  order,
  plan: planDropRole,
  apply: runPlanned,
} satisfies StepKind<typeof fields>;
