// snapshot: read-only forensics before anything changes (sessions, hidden backends, locks,
// blocking, prepared transactions), in one round trip: containment waits for it. Under a lock on a
// catalog it gives way: the containment statement's terminate rows carry the sessions' forensic columns instead.
import type { z as Z } from 'zod';
import { toHiddenBackends } from '../../checks/hidden-backends.js';
import { toBlockingRows, toLockRows } from '../../checks/locks.js';
import { toPreparedXacts } from '../../checks/prepared-xacts.js';
import { toSession, type ActivityRow } from '../../checks/sessions.js';
import { queryAll } from '../../pg/query-all.js';
import type { Snapshot } from '../../record/cutoff-report.js';
import { sqlError, type Run } from '../run.js';
import { SNAPSHOT_PARTS, snapshotReads } from '../sql.js';
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

async function collectSnapshot(run: Run, snap: Snapshot): Promise<void> {
  const results = await queryAll(run.reader, snapshotReads(run.targets, run.major));
  const n = SNAPSHOT_PARTS.length;
  if (results.length !== run.targets.length * n + 1)
    throw new Error(`snapshot: ${results.length} results to ${run.targets.length * n + 1} statements`);
  run.targets.forEach((t, i) => {
    const [sessions, locks, blocking, prepared] = results.slice(i * n, i * n + n) as [object[], object[], object[], object[]];
    snap.sessions.push(...(sessions as ActivityRow[]).map(toSession));
    snap.locks.push(...toLockRows(locks).map((l) => ({ ...l, role: t.name })));
    snap.blocking.push(...toBlockingRows(blocking).map((b) => ({ ...b, role: t.name })));
    snap.preparedTransactions.push(...toPreparedXacts(prepared).map((p) => ({ ...p, role: t.name })));
  });
  snap.hiddenBackends = toHiddenBackends(results.at(-1)!);
}

async function applySnapshot(run: Run): Promise<string> {
  const snap: Snapshot = {
    takenAt: run.clock().toISOString(),
    sessions: [],
    hiddenBackends: [],
    locks: [],
    blocking: [],
    preparedTransactions: [],
  };
  try {
    await collectSnapshot(run, snap);
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03') throw err;
    throw new StepSkipped(
      `blocked by a lock on a system catalog (${sqlError(err)}): the containment statement's terminate rows carry the sessions' forensic columns instead`,
    );
  }
  run.report.snapshot = snap;
  return `${snap.sessions.length} session(s), ${snap.hiddenBackends.length} hidden backend(s), ${snap.locks.length} lock(s), ${snap.blocking.length} blocked session(s), ${snap.preparedTransactions.length} prepared transaction(s)`;
}

export const snapshotStep = {
  action: 'snapshot',
  fields,
  readOnly: true,
  plan: planSnapshot,
  apply: applySnapshot,
} satisfies StepKind<typeof fields>;
