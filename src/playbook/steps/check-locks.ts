// check_locks: read-only, after containment: no lock of the role's former backends or prepared
// transactions remains, and which of the sessions it had blocked were released.
import type { z as Z } from 'zod';
import { ident, literal } from '../../pg/quote.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import { num, str, type Run } from '../run.js';
import { LOCKS_REMAINING, STILL_BLOCKED } from '../sql.js';
import { mustFollow, type PlanContext, type StepKind } from './kind.js';

type Row = Record<string, unknown>;

const fields = (_z: typeof Z) => ({});

function planCheckLocks(ctx: PlanContext): void {
  ctx.add({
    action: 'check_locks',
    database: null,
    role: null,
    sql: [LOCKS_REMAINING, STILL_BLOCKED],
    reason: "read-only: no lock of the role's former backends or prepared transactions remains; which blocked sessions were released",
  });
}

/** The dry run's detail: a prepared transaction the plan cannot roll back keeps its locks. */
function wouldCheck(run: Run): string {
  const left = run.report.steps.filter((x) => x.action === 'rollback_prepared' && x.skip && x.gid).map((x) => literal(x.gid!));
  return left.length
    ? `would list the locks that remain (those of prepared ${left.join(', ')} will: it cannot be rolled back here) and the sessions still blocked`
    : 'would confirm that no lock of the role remains and list the sessions it had blocked';
}

/** Each prepared transaction left (not rolled back, or not by this operator) by gid, database and what it holds. */
function heldByPrepared(remaining: Row[]): string {
  const held = new Map<string, string[]>();
  for (const r of remaining.filter((x) => x.prepared_gid)) {
    const px = `${literal(str(r.prepared_gid)!)} in ${ident(str(r.prepared_database)!)}`;
    held.set(px, [...(held.get(px) ?? []), str(r.description)!]);
  }
  return [...held].map(([px, locks]) => `; prepared ${px} holds ${locks.join(', ')}`).join('');
}

async function applyCheckLocks(run: Run, step: ReportStep): Promise<string> {
  const { report } = run;
  const former = [...new Set([...(report.snapshot?.sessions.map((x) => x.pid) ?? []), ...report.terminated.map((t) => t.pid)])];
  const blockedBefore = [...new Set(report.snapshot?.blocking.map((b) => b.blockedPid) ?? [])];
  // a standby's prepared transactions are the primary's, rolled back there and replayed here
  const owners = run.standby ? [] : run.targets.map((t) => t.name);
  const remaining = (await run.exec.run(step, LOCKS_REMAINING, { values: [former, owners] }))[0]?.rows ?? [];
  const still = (await run.exec.run(step, STILL_BLOCKED, { values: [blockedBefore] }))[0]?.rows ?? [];
  if (run.dry) return wouldCheck(run);
  const formerSet = new Set(former);
  const stillBlocked = still
    .map((r) => ({ pid: num(r.pid), user: str(r.usename), blockedBy: ((r.blocked_by as number[] | null) ?? []).map(num) }))
    .filter((r) => r.blockedBy.some((p) => formerSet.has(p) || (p === 0 && remaining.some((x) => x.prepared_gid))));
  const released = (report.snapshot?.blocking ?? [])
    .filter((b) => !stillBlocked.some((x) => x.pid === b.blockedPid))
    .map((b) => ({
      pid: b.blockedPid,
      user: b.blockedUser,
      blockedBy: b.blockerGid ? `prepared '${b.blockerGid}'` : `pid ${b.blockerPid}`,
    }));
  report.locks = { remaining, released, stillBlocked };
  if (remaining.length)
    run.expose(`${remaining.length} lock(s) of the role's former backends or prepared transactions remain` + heldByPrepared(remaining));
  if (stillBlocked.length) run.expose(`session(s) ${stillBlocked.map((x) => x.pid).join(', ')} are still blocked by the role`);
  return (
    `${remaining.length === 0 ? 'no lock of the role remains' : `${remaining.length} lock(s) remain`}; ` +
    `${released.length} blocked session(s) released${released.length ? ` (${[...new Set(released.map((r) => r.pid))].join(', ')})` : ''}` +
    (stillBlocked.length ? `; still blocked: ${stillBlocked.map((x) => x.pid).join(', ')}` : '')
  );
}

export const checkLocksStep = {
  action: 'check_locks',
  fields,
  order: mustFollow('contain'),
  plan: planCheckLocks,
  apply: applyCheckLocks,
} satisfies StepKind<typeof fields>;
