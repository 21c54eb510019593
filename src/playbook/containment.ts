// The containment statement's life: tried again while a lock holds it up (until the settle
// timeout), judged after a failure by whether its COMMIT went through, and, with
// --include-created, sent again for roles a target made during the run.
import type { ReportStep } from '../record/cutoff-report.js';
import { clearBlockers, nameBlockers } from './blockers.js';
import { adoptAdministered } from './collect.js';
import type { ResultSet } from './executor.js';
import { Interrupted } from './steps/kind.js';
import { num, sqlError, type Run } from './run.js';
import { COMMITTED_AT, contain, RETRY_SQLSTATES, roleState, type Statement } from './sql.js';

/** A failure the containment statements are tried again after (a lock wait ran out, a concurrent update). */
function retryable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (!e.code || !RETRY_SQLSTATES.has(e.code)) return false;
  return e.code !== 'XX000' || /tuple concurrently (updated|deleted)/.test(e.message ?? '');
}

/** A lock (or a concurrent update) held a containment statement up, and there is time to try again. */
export function worthRetry(run: Run, err: unknown, deadline: number): boolean {
  return !run.interrupt.interrupted && retryable(err) && Date.now() < deadline;
}

/** The ALTER's own result (NOLOGIN and CONNECTION LIMIT 0) on every target; unreadable is "no". */
export async function nologinCommitted(run: Run): Promise<boolean> {
  const now = await run.reader
    .query<{ oid: string; rolcanlogin: boolean; rolconnlimit: number }>(roleState(run.oids))
    .catch(() => ({ rows: [] }));
  return run.targets.every((t) => now.rows.some((r) => num(r.oid) === t.oid && !r.rolcanlogin && num(r.rolconnlimit) === 0));
}

/** The containment statement, tried again after a lock held it up, until the settle timeout; throws the last failure. */
export async function runContain(run: Run, step: ReportStep, stmt: Statement): Promise<ResultSet[]> {
  const deadline = Date.now() + run.plan.options.settle.timeoutS * 1000;
  for (;;) {
    run.report.contain!.attempts++;
    try {
      return await run.exec.run(step, stmt);
    } catch (err) {
      if (!worthRetry(run, err, deadline) || (await nologinCommitted(run))) throw err;
      // a lock held against the ALTER: end the role's own holders, name the others, try again
      await clearBlockers(run, step);
    }
  }
}

/** The containment statement failed for good: did its COMMIT go through before the failure? */
export async function containFailed(run: Run, err: unknown): Promise<string> {
  const blockedBy = (run.report.contain?.blockers ?? []).length ? ` (blockers: see contain.blockers)` : '';
  await nameBlockers(run);
  if (!(await nologinCommitted(run))) {
    if (run.interrupt.interrupted) throw new Interrupted();
    throw new Error(`nothing was committed: ${sqlError(err)}${blockedBy}`, { cause: err });
  }
  // the ALTERs committed and what came after them failed: the settle loop terminates instead
  run.changed = true;
  run.committed((await run.reader.query<{ committed_at: string; commit_lsn: string }>(COMMITTED_AT).catch(() => null))?.rows[0]);
  run.cleanScans = 0;
  if (run.interrupt.interrupted) throw new Interrupted();
  run.warn(`NOLOGIN committed, then the rest of the containment statement failed: ${sqlError(err)}`);
  return `NOLOGIN committed for ${run.targets.length} role(s); terminating in the same round trip failed (${sqlError(err)}): the settle loop terminates instead`;
}

/**
 * --include-created: a role a target made during the run (it holds ADMIN OPTION on it) joins the
 * targets and is contained at once; the settle loop then covers it with the rest.
 */
export async function adoptCreated(run: Run, step: ReportStep): Promise<number> {
  const { plan } = run;
  if (run.dry || run.standby || !plan.options.includeCreated) return 0;
  const found = await adoptAdministered(run.reader, run.state).catch((err: unknown) => {
    run.warn(`could not look for roles the targets made during the cutoff: ${sqlError(err)}`);
    return [];
  });
  if (!found.length) return 0;
  for (const { role, entry } of found) {
    run.oids.push(role.oid);
    run.nameByOid.set(role.oid, role.name);
    run.report.roles.push(entry);
  }
  const names = found.map((f) => JSON.stringify(f.role.name)).join(', ');
  const stmt = contain(
    found.map((f) => f.role),
    run.major,
    { strip: plan.options.stripPrivileges, rotatePassword: plan.options.rotatePassword },
  );
  let res: ResultSet[];
  try {
    res = await runContain(run, step, stmt);
  } catch (err) {
    // the settle loop re-applies NOLOGIN to any target that can still log in, these included
    run.warn(`${names} made by a target during the cutoff: containing them failed (${sqlError(err)}); the settle loop tries again`);
    return found.length;
  }
  run.changed = true;
  run.recordTerminated(res.at(-2)?.rows ?? [], false);
  run.addSuspects(res.at(-1)?.rows ?? []);
  run.warn(`${names} made by a target during the cutoff (it holds ADMIN OPTION on them): contained too (--include-created)`);
  return found.length;
}
