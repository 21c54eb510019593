// The check_locks step kind: its plan (the two read-only queries), its position, its dry run (both
// queries as planned; the detail names a prepared transaction the plan cannot roll back), and a
// real run (scripted): what remains, who was released, who is still blocked.
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../../src/record/cutoff-report.js';
import { LOCKS_REMAINING, STILL_BLOCKED } from '../../../src/playbook/sql.js';
import { checkLocksStep } from '../../../src/playbook/steps/check-locks.js';
import { dryApply, executed, planWith, playbookStep, rows, runOf, Scripted } from './fixtures.js';

const planned = () => planWith(checkLocksStep).steps;

describe('check_locks plan', () => {
  it('one step: the locks that remain and the sessions still blocked', () => {
    expect(planned()).toEqual([
      {
        action: 'check_locks',
        database: null,
        role: null,
        sql: [LOCKS_REMAINING, STILL_BLOCKED],
        reason: "read-only: no lock of the role's former backends or prepared transactions remains; which blocked sessions were released",
      },
    ]);
    expect(STILL_BLOCKED).toMatch(/pg_blocking_pids\(a\.pid\)/);
  });

  it('takes no fields; must come after contain', () => {
    expect(() => playbookStep(checkLocksStep, { x: 1 })).toThrow();
    expect(checkLocksStep.order([{ action: 'check_locks' }, { action: 'contain' }], 0)).toBe('"check_locks" must come after "contain"');
    expect(checkLocksStep.order([{ action: 'contain' }, { action: 'check_locks' }], 1)).toBeNull();
  });
});

describe('check_locks apply', () => {
  it('dry run: both queries as planned, on the main connection', async () => {
    const { detail, log, step, run } = await dryApply(checkLocksStep, planned());
    expect(detail).toBe('would confirm that no lock of the role remains and list the sessions it had blocked');
    expect(executed(log)).toEqual(step.sql);
    expect(log.map((l) => l.database)).toEqual([null, null]);
    expect(run.report.locks).toBeNull();
  });

  it('dry run: a prepared transaction the plan skips is named as keeping its locks', async () => {
    const skipped = {
      action: 'rollback_prepared' as const,
      database: 'app',
      role: 'mallory',
      gid: 'tx1',
      sql: [],
      reason: '',
      skip: 'not possible',
    };
    const drafts = [skipped, ...planned()];
    const { detail } = await dryApply(checkLocksStep, drafts, 1);
    expect(detail).toBe(
      "would list the locks that remain (those of prepared 'tx1' will: it cannot be rolled back here) and the sessions still blocked",
    );
  });

  it("real run (scripted): the former backends' pids and the owners are passed; a remaining lock and a still-blocked session are exposure", async () => {
    const calls: { sql: string; values: unknown }[] = [];
    const exec = new Scripted((sql, values) => {
      calls.push({ sql, values });
      if (sql === LOCKS_REMAINING)
        return [rows({ pid: null, prepared_gid: 'tx1', prepared_database: 'app', description: 'RowExclusiveLock on accounts' })];
      return [rows({ pid: 5001, usename: 'alice', blocked_by: [0] })];
    });
    const run = runOf(exec, planned());
    const snapshot: Snapshot = {
      takenAt: 'x',
      sessions: [{ pid: 4242 } as Snapshot['sessions'][number]],
      hiddenBackends: [],
      locks: [],
      blocking: [
        { blockedPid: 5001, blockedUser: 'alice', blockerGid: 'tx1', blockerPid: null } as Snapshot['blocking'][number],
        { blockedPid: 5002, blockedUser: 'bob', blockerGid: null, blockerPid: 4242 } as Snapshot['blocking'][number],
      ],
      preparedTransactions: [],
    };
    run.report.snapshot = snapshot;
    const detail = await checkLocksStep.apply(run, run.report.steps[0]!);
    expect(detail).toBe('1 lock(s) remain; 1 blocked session(s) released (5002); still blocked: 5001');
    expect(calls.map((c) => c.values)).toEqual([[[4242], ['mallory']], [[5001, 5002]]]);
    expect(executed(exec.log)).toEqual(run.report.steps[0]!.sql);
    expect(run.report.exposure).toEqual([
      "1 lock(s) of the role's former backends or prepared transactions remain; prepared 'tx1' in \"app\" holds RowExclusiveLock on accounts",
      'session(s) 5001 are still blocked by the role',
    ]);
    expect(run.report.locks!.released).toEqual([{ pid: 5002, user: 'bob', blockedBy: 'pid 4242' }]);
  });

  it('real run, nothing left: says so', async () => {
    const run = runOf(new Scripted(() => [rows()]), planned());
    expect(await checkLocksStep.apply(run, run.report.steps[0]!)).toBe('no lock of the role remains; 0 blocked session(s) released');
    expect(run.report.exposure).toEqual([]);
  });
});
