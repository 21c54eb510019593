// contain: the one simple-query round trip that commits NOLOGIN (and CONNECTION LIMIT 0, and the
// stripped privileges) before any session is terminated, then terminates them and lists hidden
// backends. On a standby the plan waits for replay first (await_replay) and only terminates here.
import type { z as Z } from 'zod';
import type { ContainReport, ReportStep } from '../../record/cutoff-report.js';
import { nameBlockers } from '../blockers.js';
import { adoptCreated, containFailed, runContain } from '../containment.js';
import type { ResultSet } from '../executor.js';
import type { Run } from '../run.js';
import { contain, containStandby, REPLAY_POSITION, restoreRole } from '../sql.js';
import type { PlanContext, RestoreContext, RestorePart, StepKind } from './kind.js';

const fields = (z: typeof Z) => ({
  /** Also NOSUPERUSER NOCREATEROLE for a target that has either (default true). */
  strip_privileges: z.boolean().default(true),
  rotate_password: z.boolean().default(false),
});

function planContain(ctx: PlanContext): void {
  const { state, options, targets } = ctx;
  const oids = targets.map((t) => t.oid);
  const major = state.server.major;
  if (ctx.standby) {
    ctx.add({
      action: 'await_replay',
      database: null,
      role: null,
      sql: [REPLAY_POSITION],
      reason:
        "standby: NOLOGIN reaches this node by WAL replay; wait until it has replayed the primary's position after the commit, so that new logins here are refused before any session is terminated (lag reported)",
    });
    ctx.add({
      action: 'contain',
      database: null,
      role: null,
      sql: [containStandby(oids, major).display],
      reason:
        'standby: one round trip: terminate every backend of the role with the forensic snapshot, then list hidden backends (no ALTER here: it came by replay)',
    });
    return;
  }
  const stmt = contain(targets, major, { strip: options.stripPrivileges, rotatePassword: options.rotatePassword });
  ctx.add({
    action: 'contain',
    database: null,
    role: null,
    sql: [stmt.display],
    reason:
      'one simple-query round trip: NOLOGIN commits before any session is terminated; the terminate statement returns the forensic snapshot; hidden backends are listed right after the commit',
  });
}

/** Terminated rows, then hidden backends: the last two results of either containment statement. */
function takeResults(run: Run, results: ResultSet[]): { term: number; hidden: number } {
  const term = results.at(-2)?.rows ?? [];
  const hidden = results.at(-1)?.rows ?? [];
  run.recordTerminated(term, false);
  run.addSuspects(hidden);
  run.cleanScans = term.length === 0 ? 1 : 0;
  return { term: term.length, hidden: hidden.length };
}

async function applyStandby(run: Run, step: ReportStep): Promise<string> {
  const results = await run.exec.run(step, containStandby(run.oids, run.major));
  if (run.dry) {
    run.cleanScans = 1;
    return 'would terminate every backend of the role(s) on this standby and list hidden backends';
  }
  run.changed = true;
  const { term, hidden } = takeResults(run, results);
  return `standby: terminated ${term} backend(s); ${hidden} hidden backend(s) (suspects)`;
}

async function applyContain(run: Run, step: ReportStep): Promise<string> {
  if (run.standby) return applyStandby(run, step);
  const { options } = run.plan;
  const stmt = contain(run.targets, run.major, { strip: options.stripPrivileges, rotatePassword: options.rotatePassword });
  const attempt: ContainReport = { attempts: 0, blockers: [] };
  run.report.contain = attempt;
  let results: ResultSet[];
  try {
    results = await runContain(run, step, stmt);
  } catch (err) {
    return containFailed(run, err);
  }
  if (run.dry) {
    run.cleanScans = 1;
    return 'would commit NOLOGIN, then terminate every backend of the role(s) and list hidden backends';
  }
  run.changed = true;
  run.committed(results.at(-3)?.rows[0]);
  const { term, hidden } = takeResults(run, results);
  await nameBlockers(run);
  await adoptCreated(run, step);
  const retried =
    attempt.attempts > 1
      ? `; ${attempt.attempts} attempts (blocked by a lock: ${attempt.blockers.length} holder(s), see contain.blockers)`
      : '';
  return `NOLOGIN committed for ${run.targets.length} role(s)${options.rotatePassword ? ', password rotated' : ''}; terminated ${term} backend(s) in the same round trip; ${hidden} hidden backend(s) right after the commit (suspects)${retried}`;
}

/** The contain step is known not to have changed the role: skipped, or failed with nothing committed. */
function changedNothing(report: RestoreContext['report']): boolean {
  const c = report.steps.find((s) => s.action === 'contain');
  return c !== undefined && (c.status === 'skipped' || (c.status === 'failed' && (c.detail ?? '').startsWith('nothing was committed')));
}

/** LOGIN, the connection limit and, where this cutoff stripped them, SUPERUSER/CREATEROLE come back. */
function inverse(ctx: RestoreContext): RestorePart {
  const { report, role, entry, standby, stripped } = ctx;
  const b = entry.before;
  const notes: string[] = [];
  if (report.steps.some((s) => s.action === 'contain' && s.sql.some((q) => q.includes("PASSWORD '*****'"))))
    notes.push('the password was rotated: the old one cannot come back; set a new one with ALTER ROLE ... PASSWORD');
  notes.push('terminated sessions stay terminated: clients must reconnect');
  if (standby)
    notes.push("standby: LOGIN, the connection limit and the attributes come back by replay once the primary's section is restored");
  if ((b.superuser || b.createRole) && !stripped)
    notes.push(
      ctx.unbacked
        ? 'no record in the state directory backs this report, and a report alone is no evidence: restore does not grant SUPERUSER/CREATEROLE back (grant them by hand after review)'
        : 'the cutoff did not strip SUPERUSER/CREATEROLE (its plan has no NOSUPERUSER for the role): restore does not grant them',
    );
  const untouched = changedNothing(report);
  if (untouched && !standby)
    notes.push('the cutoff never committed NOLOGIN (its contain step did not run or committed nothing): the role is left as it is');
  const alter =
    standby || untouched
      ? null
      : restoreRole({
          name: role,
          canLogin: b.canLogin,
          connectionLimit: b.connectionLimit,
          superuser: b.superuser && stripped,
          createRole: b.createRole && stripped,
        });
  return { alter, notes };
}

export const containStep = {
  action: 'contain',
  fields,
  options: (step, input) => ({
    rotatePassword: Boolean(input.rotatePassword) || step.rotate_password,
    stripPrivileges: step.strip_privileges,
  }),
  plan: planContain,
  apply: applyContain,
  inverse,
} satisfies StepKind<typeof fields>;
