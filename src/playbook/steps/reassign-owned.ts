// reassign_owned: the role's objects go to another role (--reassign-to, or the playbook's `to`),
// in every database that holds some.
import type { z as Z } from 'zod';
import { ident } from '../../pg/quote.js';
import { ExitCode, PgrevokeError } from '../../errors.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import type { Run } from '../run.js';
import { reassignOwned } from '../sql.js';
import { mustFollow, type PlanContext, type StepKind } from './kind.js';
import { planOwned, refreshOwned, runPlanned, type OwnedWork } from './owned.js';

const fields = (z: typeof Z) => ({ to: z.string().min(1).nullable().default(null) });

const work: OwnedWork = {
  action: 'reassign_owned',
  sql: (role, { options }) => reassignOwned(role, options.reassignTo!),
  reason: (db, to) => `objects of the role in ${ident(db)} go to ${ident(to!)}`,
};

function planReassign(ctx: PlanContext): void {
  if (!ctx.options.reassignTo)
    throw new PgrevokeError(`playbook ${ctx.playbook} reassigns the role's objects: say to whom with --reassign-to ROLE`, {
      exitCode: ExitCode.USAGE,
    });
  planOwned(ctx, work);
}

export const reassignOwnedStep = {
  action: 'reassign_owned',
  fields,
  order: mustFollow('contain'),
  options: (step, input) => ({ reassignTo: input.reassignTo ?? step.to }),
  plan: planReassign,
  refresh: (run: Run, have: readonly ReportStep[]) => refreshOwned(run, have, work),
  apply: runPlanned,
} satisfies StepKind<typeof fields>;
