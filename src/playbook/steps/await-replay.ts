// await_replay (standby only, planned by contain): NOLOGIN reaches a standby by WAL replay; wait
// until this node has replayed the primary's commit, so new logins are refused here before any
// session is terminated.
import type { ReplayReport, ReportStep } from '../../record/cutoff-report.js';
import { num, str, type Run } from '../run.js';
import { REPLAY_POSITION } from '../sql.js';
import { Interrupted, type StepKind } from './kind.js';

async function applyAwaitReplay(run: Run, step: ReportStep): Promise<string> {
  const { timeoutS } = run.plan.options.settle;
  if (run.dry) {
    await run.exec.run(step, REPLAY_POSITION, { values: ['<primary WAL position after the NOLOGIN commit>'] });
    return "would wait until this standby has replayed the primary's NOLOGIN commit";
  }
  const t0 = Date.now();
  const target = (await run.deps.replayTarget) ?? null;
  const replay: ReplayReport = { target, replayed: null, lagBytes: null, caughtUp: false, waitedMs: 0 };
  run.report.replay = replay;
  if (target === null) {
    replay.waitedMs = Date.now() - t0;
    run.noNologin = true;
    throw new Error(
      "the primary did not commit NOLOGIN (not reached, refused or failed: see its section): nothing to wait for; ending the role's sessions here and rejecting it at this node's pg_hba.conf",
    );
  }
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const row = (await run.exec.run(step, REPLAY_POSITION, { values: [target] }))[0]?.rows[0] ?? {};
    replay.replayed = str(row.replayed);
    replay.lagBytes = row.lag_bytes === null || row.lag_bytes === undefined ? null : num(row.lag_bytes);
    replay.caughtUp = row.caught_up === true;
    replay.waitedMs = Date.now() - t0;
    if (replay.caughtUp || run.interrupt.interrupted || Date.now() >= deadline) break;
    await run.interrupt.sleep(10);
  }
  if (run.interrupt.interrupted && !replay.caughtUp) throw new Interrupted();
  if (!replay.caughtUp) {
    run.expose(
      `this standby had not replayed the primary's NOLOGIN after ${timeoutS} s (${replay.lagBytes ?? '?'} bytes behind): it may still accept new logins of the role`,
    );
    return `replay at ${replay.replayed ?? '?'}, still ${replay.lagBytes ?? '?'} bytes behind ${target} after ${replay.waitedMs} ms; terminating anyway`;
  }
  return `replayed ${target} after ${replay.waitedMs} ms (replay at ${replay.replayed ?? '?'})`;
}

export const awaitReplayStep = {
  action: 'await_replay',
  apply: applyAwaitReplay,
} satisfies StepKind;
