// snapshot: read-only forensics before anything changes (sessions, hidden backends, locks,
// blocking, prepared transactions), in one round trip: containment waits for it. Under a lock on a
// catalog it gives way: the containment statement's terminate rows carry the sessions' forensic columns instead.
import type { z as Z } from 'zod';
import { queryAll } from '../../pg/query-all.js';
import type { Snapshot } from '../../record/cutoff-report.js';
import { sqlError, type Run } from '../run.js';
import { toSnapshot } from '../snapshot-rows.js';
import { snapshotReads } from '../sql.js';
import { StepSkipped, type PlanContext, type StepKind } from './kind.js';

const fields = (_z: typeof Z) => ({});

function planSnapshot(ctx: PlanContext): void {
  ctx.add({
    action: 'snapshot',
    database: null,
    role: null,
    sql: [],
    reason: 'read-only forensics before anything changes: sessions, hidden backends, locks, blocking, prepared transactions',
  });
}

/** What the snapshot found, as the step's detail says it. */
function summary(snap: Snapshot): string {
  return `${snap.sessions.length} session(s), ${snap.hiddenBackends.length} hidden backend(s), ${snap.locks.length} lock(s), ${snap.blocking.length} blocked session(s), ${snap.preparedTransactions.length} prepared transaction(s)`;
}

async function applySnapshot(run: Run): Promise<string> {
  // read with the plan state, in its round trip, when nothing stood between (no prompt): taken as it is
  if (run.deps.snapshot) {
    run.report.snapshot = run.deps.snapshot;
    return summary(run.deps.snapshot);
  }
  const takenAt = run.clock().toISOString();
  let snap: Snapshot;
  try {
    const names = run.targets.map((t) => t.name);
    snap = toSnapshot(await queryAll(run.reader, snapshotReads(run.targets, run.major)), names, takenAt);
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03') throw err;
    throw new StepSkipped(
      `blocked by a lock on a system catalog (${sqlError(err)}): the containment statement's terminate rows carry the sessions' forensic columns instead`,
    );
  }
  run.report.snapshot = snap;
  return summary(snap);
}

export const snapshotStep = {
  action: 'snapshot',
  fields,
  readOnly: true,
  plan: planSnapshot,
  apply: applySnapshot,
} satisfies StepKind<typeof fields>;
