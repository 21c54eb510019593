// The rollback_prepared step kind: its plan (one step per prepared transaction in its database;
// skipped with the reason for a non-superuser operator, on a standby, or with none), its position,
// its dry run (the planned ROLLBACK PREPARED, in the transaction's database), the real-run paths
// (gone meanwhile, not allowed), its refresh after containment, and its inverse note.
import { describe, expect, it } from 'vitest';
import { STANDBY_DDL } from '../../../src/playbook/model.js';
import { StepSkipped } from '../../../src/playbook/steps/kind.js';
import { cannotRollBack, rollbackPreparedStep } from '../../../src/playbook/steps/rollback-prepared.js';
import {
  ADMIN,
  dryApply,
  executed,
  planState,
  planWith,
  playbookStep,
  reader,
  restoreCtx,
  runOf,
  Scripted,
  source,
  sqlError,
  standbyState,
} from './fixtures.js';

const xact = (gid: string, database: string, locks = 2) => ({
  gid,
  database,
  prepared: '2030-01-01 00:00:00+00',
  transaction: '700',
  ageSeconds: 5,
  locks,
  holds: ['RowExclusiveLock on accounts'],
  role: 'mallory',
});
const two = () => planState({ prepared: [xact('tx1', 'app'), xact("it's", 'reports', 3)] });

describe('rollback_prepared plan', () => {
  it('one step per prepared transaction, in its own database, the gid quoted', () => {
    const { steps, exposure } = planWith(rollbackPreparedStep, {}, { state: two() });
    expect(steps).toEqual([
      {
        action: 'rollback_prepared',
        database: 'app',
        role: 'mallory',
        gid: 'tx1',
        sql: ["ROLLBACK PREPARED 'tx1'"],
        reason: 'prepared 2030-01-01 00:00:00+00, holds 2 lock(s); must run in its database',
        skip: null,
      },
      {
        action: 'rollback_prepared',
        database: 'reports',
        role: 'mallory',
        gid: "it's",
        sql: ["ROLLBACK PREPARED 'it''s'"],
        reason: 'prepared 2030-01-01 00:00:00+00, holds 3 lock(s); must run in its database',
        skip: null,
      },
    ]);
    expect(exposure).toEqual([]);
  });

  it('none: one skipped step saying it is looked for again', () => {
    expect(planWith(rollbackPreparedStep).steps.map((s) => [s.database, s.sql, s.skip])).toEqual([
      [null, [], 'no prepared transaction of the role (checked again after containment)'],
    ]);
  });

  it('a non-superuser operator: skipped with the reason, no statement, and on the exposure list', () => {
    const { steps, exposure } = planWith(rollbackPreparedStep, {}, { state: two(), operator: ADMIN });
    expect(steps.map((s) => [s.gid, s.sql, s.skip])).toEqual([
      ['tx1', [], cannotRollBack('ops', { gid: 'tx1', database: 'app' })],
      ["it's", [], cannotRollBack('ops', { gid: "it's", database: 'reports' })],
    ]);
    expect(cannotRollBack('ops', { gid: 'tx1', database: 'app' })).toBe(
      `not possible: ops is not a superuser, and only a superuser or the role that prepared it may COMMIT or ROLLBACK PREPARED; it keeps its locks until a superuser runs in "app": ROLLBACK PREPARED 'tx1'`,
    );
    expect(exposure).toEqual([
      `prepared transaction of "mallory" 'tx1' in "app", holding 2 lock(s): RowExclusiveLock on accounts: ${cannotRollBack('ops', { gid: 'tx1', database: 'app' })}`,
      `prepared transaction of "mallory" 'it''s' in "reports", holding 3 lock(s): RowExclusiveLock on accounts: ${cannotRollBack('ops', { gid: "it's", database: 'reports' })}`,
    ]);
  });

  it('on a standby: one step skipped as DDL (the primary rolls back; replay brings it)', () => {
    const { steps } = planWith(rollbackPreparedStep, {}, { state: standbyState({ prepared: [xact('tx1', 'app')] }) });
    expect(steps.map((s) => [s.action, s.database, s.sql, s.skip])).toEqual([['rollback_prepared', null, [], STANDBY_DDL]]);
  });

  it('takes no fields; must come after contain', () => {
    expect(() => playbookStep(rollbackPreparedStep, { gid: 'x' })).toThrow();
    expect(rollbackPreparedStep.order([{ action: 'rollback_prepared' }, { action: 'contain' }], 0)).toBe(
      '"rollback_prepared" must come after "contain"',
    );
    expect(rollbackPreparedStep.order([{ action: 'contain' }, { action: 'rollback_prepared' }], 1)).toBeNull();
  });
});

describe('rollback_prepared apply', () => {
  it('dry run: the planned statement in the transaction database; nothing changed', async () => {
    const { steps } = planWith(rollbackPreparedStep, {}, { state: two() });
    for (const at of [0, 1]) {
      const { detail, log, run, step } = await dryApply(rollbackPreparedStep, steps, at, { state: two() });
      expect(executed(log)).toEqual(step.sql);
      expect(log.map((l) => l.database)).toEqual([step.database]);
      expect(run.changed).toBe(false);
      expect(detail).toBe(at === 0 ? "would roll back 'tx1' in app" : "would roll back 'it's' in reports");
    }
  });

  it('real run (scripted): rolled back, its locks released', async () => {
    const { steps } = planWith(rollbackPreparedStep, {}, { state: two() });
    const exec = new Scripted();
    const run = runOf(exec, steps, { state: two() });
    expect(await rollbackPreparedStep.apply(run, run.report.steps[0]!)).toBe("rolled back 'tx1' in app; its locks are released");
    expect(executed(exec.log)).toEqual(steps[0]!.sql);
    expect(run.changed).toBe(true);
  });

  it('gone meanwhile (42704): skipped, saying so', async () => {
    const { steps } = planWith(rollbackPreparedStep, {}, { state: two() });
    const run = runOf(new Scripted(() => sqlError('prepared transaction with identifier "tx1" does not exist', '42704')), steps);
    const err = await rollbackPreparedStep.apply(run, run.report.steps[0]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepSkipped);
    expect((err as Error).message).toBe("prepared transaction 'tx1' no longer exists (committed or rolled back meanwhile)");
    expect(run.changed).toBe(false);
  });

  it('one found after containment for a non-superuser operator: skipped without running anything, on the exposure list', async () => {
    const exec = new Scripted();
    const drafts = [
      {
        action: 'rollback_prepared' as const,
        database: 'app',
        role: 'mallory',
        gid: 'late',
        sql: ["ROLLBACK PREPARED 'late'"],
        reason: '',
      },
    ];
    const run = runOf(exec, drafts, { operator: ADMIN });
    await expect(rollbackPreparedStep.apply(run, run.report.steps[0]!)).rejects.toBeInstanceOf(StepSkipped);
    expect(exec.log).toEqual([]);
    expect(run.report.exposure).toEqual([
      `prepared transaction of "mallory" 'late' in "app": ${cannotRollBack('ops', { gid: 'late', database: 'app' })}`,
    ]);
  });

  it('refresh: a transaction prepared after the plan becomes a step; one already planned does not', async () => {
    const r = reader((_sql, values) =>
      JSON.stringify(values) === JSON.stringify([['mallory']])
        ? [
            { gid: 'tx1', database: 'app', transaction: '700', prepared: 'x', age_seconds: 1, locks: 1, holds: [] },
            { gid: 'late', database: 'reports', transaction: '701', prepared: 'x', age_seconds: 1, locks: 1, holds: [] },
          ]
        : [],
    );
    const { steps } = planWith(rollbackPreparedStep, {}, { state: two() });
    const run = runOf(new Scripted(), steps, { reader: r });
    expect(await rollbackPreparedStep.refresh(run, run.report.steps)).toEqual([
      {
        action: 'rollback_prepared',
        database: 'reports',
        role: 'mallory',
        gid: 'late',
        sql: ["ROLLBACK PREPARED 'late'"],
        reason: 'prepared after the plan was made',
      },
    ]);
  });
});

describe('rollback_prepared inverse', () => {
  it('a transaction rolled back cannot come back: a note; none rolled back: nothing', () => {
    expect(rollbackPreparedStep.inverse(restoreCtx(source([{ action: 'rollback_prepared', status: 'done' }])))).toEqual({
      notes: ['rolled-back prepared transactions cannot be restored'],
    });
    expect(rollbackPreparedStep.inverse(restoreCtx(source([{ action: 'rollback_prepared', status: 'skipped' }])))).toEqual({});
  });
});
