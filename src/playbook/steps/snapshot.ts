// snapshot: read-only forensics before anything changes (sessions, hidden backends, locks,
// blocking, prepared transactions). Under a lock on a catalog it gives way: the containment
// statement's terminate rows carry the sessions' forensic columns instead.
import type { z as Z } from 'zod';
import { collectHiddenBackends } from '../../checks/hidden-backends.js';
import { collectBlocking, collectLocks } from '../../checks/locks.js';
import { collectPrepared } from '../../checks/prepared-xacts.js';
import { collectSessions } from '../../checks/sessions.js';
import type { Snapshot } from '../../record/cutoff-report.js';
import { sqlError, type Run } from '../run.js';
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
  const { reader } = run;
  for (const t of run.targets) {
    snap.sessions.push(...(await collectSessions(reader, t.oid)));
    snap.locks.push(...(await collectLocks(reader, t.oid, t.name)).map((l) => ({ ...l, role: t.name })));
    snap.blocking.push(...(await collectBlocking(reader, t.oid, t.name)).map((b) => ({ ...b, role: t.name })));
    snap.preparedTransactions.push(...(await collectPrepared(reader, t.name)).map((p) => ({ ...p, role: t.name })));
  }
  snap.hiddenBackends = await collectHiddenBackends(reader, run.major);
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
