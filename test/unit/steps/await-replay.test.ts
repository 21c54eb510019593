// The await_replay step kind (a standby's, planned by contain): its dry run logs the planned
// position query; a real run (scripted) polls until this node has replayed the primary's commit,
// reports the lag when it never does, and says so when the primary never committed.
import { describe, expect, it } from 'vitest';
import { REPLAY_POSITION } from '../../../src/playbook/sql.js';
import { awaitReplayStep } from '../../../src/playbook/steps/await-replay.js';
import { containStep } from '../../../src/playbook/steps/contain.js';
import { dryApply, executed, planWith, rows, runOf, Scripted, standbyState } from './fixtures.js';

const st = standbyState();
const planned = () => planWith(containStep, {}, { state: st }).steps;

describe('await_replay kind', () => {
  it('is no playbook action: no fields, no plan, no position rule (the contain step plans it on a standby)', () => {
    expect(Object.keys(awaitReplayStep).sort()).toEqual(['action', 'apply']);
    expect(planned().map((s) => s.action)).toEqual(['await_replay', 'contain']);
    expect(planWith(containStep).steps.map((s) => s.action)).toEqual(['contain']);
  });
});

describe('await_replay apply', () => {
  it('dry run: the position query as planned, with a placeholder for the position', async () => {
    const { detail, log, step } = await dryApply(awaitReplayStep, planned(), 0, { state: st });
    expect(detail).toBe("would wait until this standby has replayed the primary's NOLOGIN commit");
    expect(executed(log)).toEqual(step.sql);
    expect(log).toEqual([{ step: 0, action: 'await_replay', database: null, sql: REPLAY_POSITION }]);
  });

  it("real run: polls with the primary's position until caught up", async () => {
    const polls: unknown[] = [];
    const exec = new Scripted((_sql, values) => {
      polls.push(values);
      return polls.length < 3
        ? [rows({ replayed: '0/2FFFF00', caught_up: false, lag_bytes: 256 })]
        : [rows({ replayed: '0/3000000', caught_up: true, lag_bytes: 0 })];
    });
    const run = runOf(exec, planned(), { state: st, deps: { replayTarget: Promise.resolve('0/3000000') } });
    const detail = await awaitReplayStep.apply(run, run.report.steps[0]!);
    expect(detail).toMatch(/^replayed 0\/3000000 after \d+ ms \(replay at 0\/3000000\)$/);
    expect(polls).toEqual([['0/3000000'], ['0/3000000'], ['0/3000000']]);
    expect(executed(exec.log)).toEqual(run.report.steps[0]!.sql);
    expect(run.report.replay).toMatchObject({ target: '0/3000000', replayed: '0/3000000', lagBytes: 0, caughtUp: true });
    expect(run.report.exposure).toEqual([]);
  });

  it('never caught up within the settle timeout: goes on, with the lag on the exposure list', async () => {
    const exec = new Scripted(() => [rows({ replayed: '0/2FFFF00', caught_up: false, lag_bytes: 256 })]);
    const run = runOf(exec, planned(), {
      state: st,
      options: { settle: { timeoutS: 0.03, hiddenGraceMs: 250, intervalMs: 20 } },
      deps: { replayTarget: Promise.resolve('0/3000000') },
    });
    const detail = await awaitReplayStep.apply(run, run.report.steps[0]!);
    expect(detail).toMatch(/^replay at 0\/2FFFF00, still 256 bytes behind 0\/3000000 after \d+ ms; terminating anyway$/);
    expect(run.report.exposure).toEqual([
      "this standby had not replayed the primary's NOLOGIN after 0.03 s (256 bytes behind): it may still accept new logins of the role",
    ]);
  });

  it('the primary never committed: fails without polling, and the run knows no NOLOGIN is coming', async () => {
    const exec = new Scripted();
    const run = runOf(exec, planned(), { state: st, deps: { replayTarget: Promise.resolve(null) } });
    await expect(awaitReplayStep.apply(run, run.report.steps[0]!)).rejects.toThrow(/^the primary did not commit NOLOGIN \(not reached/);
    expect(run.noNologin).toBe(true);
    expect(run.report.replay).toMatchObject({ target: null, caughtUp: false });
    expect(exec.log).toEqual([]);
  });
});
