// drop_owned: the privileges granted to the role (and what it still owns) go, in every database
// that holds some; drop_role needs it.
import type { z as Z } from 'zod';
import { ident } from '../../pg/quote.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import type { Run } from '../run.js';
import { dropOwned } from '../sql.js';
import { mustFollow, type StepKind } from './kind.js';
import { planOwned, refreshOwned, runPlanned, type OwnedWork } from './owned.js';

const fields = (_z: typeof Z) => ({});

const work: OwnedWork = {
  action: 'drop_owned',
  sql: (role) => dropOwned(role),
  reason: (db) => `privileges granted to the role in ${ident(db)} are revoked`,
};

export const dropOwnedStep = {
  action: 'drop_owned',
  fields,
  order: mustFollow('contain'),
  plan: (ctx) => planOwned(ctx, work),
  refresh: (run: Run, have: readonly ReportStep[]) => refreshOwned(run, have, work),
  apply: runPlanned,
} satisfies StepKind<typeof fields>;
