// The step kinds by action: the one table the planner, apply, restore and the playbook schema read.
import type { PlanAction } from '../model.js';
import { awaitReplayStep } from './await-replay.js';
import { checkLocksStep } from './check-locks.js';
import { containStep } from './contain.js';
import { disableSubscriptionsStep } from './disable-subscriptions.js';
import { dropOwnedStep } from './drop-owned.js';
import { dropRoleStep } from './drop-role.js';
import { hbaRejectStep } from './hba-reject.js';
import type { StepKind } from './kind.js';
import { reassignOwnedStep } from './reassign-owned.js';
import { rollbackPreparedStep } from './rollback-prepared.js';
import { settleStep } from './settle.js';
import { snapshotStep } from './snapshot.js';
import { sqlStep } from './sql.js';
import { verifyStep } from './verify.js';

/** In the order restore asks for their inverses (the role's attributes first, then its HBA block). */
export const STEP_KINDS = {
  contain: containStep,
  snapshot: snapshotStep,
  await_replay: awaitReplayStep,
  settle: settleStep,
  hba_reject: hbaRejectStep,
  rollback_prepared: rollbackPreparedStep,
  check_locks: checkLocksStep,
  disable_subscriptions: disableSubscriptionsStep,
  reassign_owned: reassignOwnedStep,
  drop_owned: dropOwnedStep,
  drop_role: dropRoleStep,
  sql: sqlStep,
  verify: verifyStep,
} satisfies Record<PlanAction, StepKind>;

export function kindOf(action: PlanAction): StepKind {
  return STEP_KINDS[action] as StepKind;
}
