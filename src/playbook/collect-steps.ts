// What a playbook's steps read beyond the common plan state (a `sql` step over every database):
// each kind's own collect hook, read-only, before the plan is built.
import type { Queryable } from '../checks/types.js';
import type { LoadedPlaybook } from './load.js';
import type { PlanState } from './model.js';
import { kindOf } from './steps/index.js';

export async function collectForSteps(q: Queryable, playbook: LoadedPlaybook, state: PlanState): Promise<void> {
  for (const ps of playbook.steps) await kindOf(ps.action).collect?.(q, state, ps as never);
}
