// apply: the only writer. Walks a plan through an Executor (real or dry-run), step by step, and
// returns the report. Each step kind's apply does the work (src/playbook/steps/); this loop looks
// the kind up, times it, records its status and detail, and handles interrupts and skips, once.
import type { CutoffReport, ReportStep } from '../record/cutoff-report.js';
import { exitCodeFor } from '../record/cutoff-report.js';
import { cutShortExposure } from './cut-short.js';
import { Run, sqlError, type ApplyDeps } from './run.js';
import { Interrupted, StepSkipped, type StepKind } from './steps/kind.js';
import { kindOf } from './steps/index.js';

export type { ApplyDeps };

/** Steps for objects found after containment go in after the last step of their kind (once per kind). */
async function refresh(run: Run, kind: StepKind, at: number, done: Set<string>): Promise<void> {
  if (!kind.refresh || run.standby || done.has(kind.action)) return;
  done.add(kind.action);
  const { report } = run;
  const have = report.steps.filter((x) => x.action === kind.action);
  let found;
  try {
    found = await kind.refresh(run, have);
  } catch (err) {
    run.warn(`could not look for ${kind.action} targets found after containment: ${sqlError(err)}`);
    return;
  }
  if (!found.length) return;
  const extra: ReportStep[] = found.map(({ action, ...x }) => ({
    index: 0,
    action,
    node: run.plan.node,
    skip: null,
    ...x,
    status: 'planned',
    executed: [],
    startedAt: null,
    durationMs: null,
    detail: 'found after containment (not in the plan)',
  }));
  const last = Math.max(at, ...have.map((h) => report.steps.indexOf(h)));
  report.steps.splice(last + 1, 0, ...extra);
  report.steps.forEach((x, i) => (x.index = i));
}

/** Run one step and record how it went; false when it failed. */
async function runStep(run: Run, kind: StepKind, step: ReportStep): Promise<boolean> {
  const { exec, interrupt } = run;
  step.startedAt = run.clock().toISOString();
  const t0 = performance.now();
  const logFrom = exec.log.length;
  run.deps.onStep?.(step, 'start');
  let ok = true;
  try {
    step.detail = await kind.apply(run, step);
    step.status = run.dry && !kind.readOnly ? 'planned' : 'done';
  } catch (err) {
    if (err instanceof Interrupted || (interrupt.interrupted && !(err instanceof StepSkipped))) {
      // a cancelled statement fails with 57014: that is the interrupt, not a fault of the step
      step.status = 'failed';
      step.detail = `interrupted (${interrupt.reason}) before this step finished`;
      run.report.interrupted = true;
    } else if (err instanceof StepSkipped) {
      step.status = 'skipped';
      step.detail = err.message;
    } else {
      step.status = 'failed';
      step.detail = sqlError(err);
      ok = false;
    }
  }
  step.durationMs = Math.round(performance.now() - t0);
  step.executed = [...new Set(exec.log.slice(logFrom).map((l) => l.sql))];
  run.deps.onStep?.(step, 'end');
  return ok;
}

/** Why a step is not run at all, or null: planned as skipped, or nothing to work on after a failed contain. */
function notRun(kind: StepKind, step: ReportStep, failedAt: ReportStep | null): string | null {
  if (step.skip) return step.skip;
  if (failedAt?.action === 'contain' && !kind.afterFailedContain) return 'not run: the contain step failed';
  return null;
}

/** What the report says once the walk has stopped: unstarted steps of an interrupted run, what is left open, the exit code. */
function finish(run: Run): void {
  const { report } = run;
  if (report.interrupted)
    for (const st of report.steps)
      if (st.status === 'planned' && st.startedAt === null) {
        st.status = 'skipped';
        st.detail = 'interrupted';
      }
  if (!run.dry) report.exposure.push(...cutShortExposure(report, [...run.suspects.values()], run.standby, run.interrupt.reason));
  if (run.noNologin)
    report.exposure.push(
      report.steps.some((st) => st.action === 'hba_reject' && st.status === 'done')
        ? 'the primary did not commit NOLOGIN: the role keeps LOGIN, and on this standby only the pgrevoke block in pg_hba.conf rejects it'
        : 'the primary did not commit NOLOGIN: this standby still accepts new logins of the role',
    );
  report.finishedAt = run.clock().toISOString();
  report.exitCode = exitCodeFor(report, run.changed);
}

export async function apply(deps: ApplyDeps): Promise<CutoffReport> {
  const run = new Run(deps);
  const { report } = run;
  const refreshed = new Set<string>();
  let failedAt: ReportStep | null = null;
  for (let i = 0; i < report.steps.length; i++) {
    const step = report.steps[i]!;
    if (run.interrupt.interrupted) {
      report.interrupted = true;
      break;
    }
    const kind = kindOf(step.action);
    await refresh(run, kind, i, refreshed);
    const skip = notRun(kind, step, failedAt);
    if (skip !== null) {
      step.status = 'skipped';
      step.detail = skip;
      continue;
    }
    if (!(await runStep(run, kind, step))) failedAt = failedAt ?? step;
    if (report.interrupted) break;
  }
  finish(run);
  return report;
}
