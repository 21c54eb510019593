// The disable_subscriptions step kind: its plan (per subscription: DISABLE in its database, then a
// terminate of workers restarted meanwhile), its skips, its position, its dry run (both statements
// as planned, the terminate on the main connection), its refresh, and its inverse note.
import { describe, expect, it } from 'vitest';
import { STANDBY_DDL } from '../../../src/playbook/model.js';
import { SUBSCRIPTIONS_SQL, terminate } from '../../../src/playbook/sql.js';
import { disableSubscriptionsStep } from '../../../src/playbook/steps/disable-subscriptions.js';
import {
  dryApply,
  executed,
  MALLORY,
  planState,
  planWith,
  playbookStep,
  QUOTED,
  reader,
  restoreCtx,
  rows,
  runOf,
  Scripted,
  source,
  standbyState,
} from './fixtures.js';

const subs = () =>
  planState({
    targets: [MALLORY, QUOTED],
    subscriptions: [
      { role: 'mallory', name: 'Sub"1', database: 'app', enabled: true },
      { role: 'x"y', name: 'sub2', database: 'reports', enabled: false },
    ],
  });

describe('disable_subscriptions plan', () => {
  it("per subscription, in its database: DISABLE, then end any worker restarted meanwhile (every target's)", () => {
    const { steps } = planWith(disableSubscriptionsStep, {}, { state: subs() });
    const end = terminate([16500, 16501]);
    expect(steps).toEqual([
      {
        action: 'disable_subscriptions',
        database: 'app',
        role: 'mallory',
        subscription: 'Sub"1',
        sql: ['ALTER SUBSCRIPTION "Sub""1" DISABLE', end],
        reason: 'enabled; its apply worker runs as the owner; then end any worker restarted meanwhile',
      },
      {
        action: 'disable_subscriptions',
        database: 'reports',
        role: 'x"y',
        subscription: 'sub2',
        sql: ['ALTER SUBSCRIPTION "sub2" DISABLE', end],
        reason: 'already disabled; its apply worker runs as the owner; then end any worker restarted meanwhile',
      },
    ]);
    expect(end).toContain(`a.usesysid = ANY('{16500,16501}'::oid[])`);
  });

  it('none owned, or a standby: one skipped step with the reason', () => {
    expect(planWith(disableSubscriptionsStep).steps.map((s) => [s.database, s.sql, s.skip])).toEqual([
      [null, [], 'the role owns no subscription (checked again after containment)'],
    ]);
    const st = standbyState({ subscriptions: subs().subscriptions });
    expect(planWith(disableSubscriptionsStep, {}, { state: st }).steps.map((s) => [s.database, s.sql, s.skip])).toEqual([
      [null, [], STANDBY_DDL],
    ]);
  });

  it('takes no fields; must come after contain', () => {
    expect(() => playbookStep(disableSubscriptionsStep, { name: 's' })).toThrow();
    expect(disableSubscriptionsStep.order([{ action: 'disable_subscriptions' }, { action: 'contain' }], 0)).toBe(
      '"disable_subscriptions" must come after "contain"',
    );
    expect(disableSubscriptionsStep.order([{ action: 'contain' }, { action: 'disable_subscriptions' }], 1)).toBeNull();
  });
});

describe('disable_subscriptions apply', () => {
  it('dry run: both statements as planned, DISABLE in the subscription database and the terminate on the main connection', async () => {
    const st = subs();
    const { steps } = planWith(disableSubscriptionsStep, {}, { state: st });
    const { detail, log, run, step } = await dryApply(disableSubscriptionsStep, steps, 0, { state: st });
    expect(detail).toBe('would disable subscription Sub"1 in app');
    expect(executed(log)).toEqual(step.sql);
    expect(log.map((l) => l.database)).toEqual(['app', null]);
    expect(run.changed).toBe(false);
    expect(run.report.terminated).toEqual([]);
  });

  it('real run (scripted): disabled, and a restarted worker terminated and recorded', async () => {
    const st = subs();
    const { steps } = planWith(disableSubscriptionsStep, {}, { state: st });
    const exec = new Scripted((sql) =>
      sql.startsWith('ALTER')
        ? []
        : [rows({ pid: 6001, usesysid: 16500, usename: 'mallory', backend_type: 'logical replication worker', terminated: true })],
    );
    const run = runOf(exec, steps, { state: st });
    expect(await disableSubscriptionsStep.apply(run, run.report.steps[0]!)).toBe('disabled Sub"1 in app; terminated 1 restarted worker(s)');
    expect(executed(exec.log)).toEqual(steps[0]!.sql);
    expect(run.report.terminated.map((t) => [t.pid, t.role, t.backendType])).toEqual([[6001, 'mallory', 'logical replication worker']]);
    expect(run.changed).toBe(true);
  });

  it('refresh: a subscription created after the plan becomes a step', async () => {
    const st = subs();
    const r = reader((sql, values) =>
      sql === SUBSCRIPTIONS_SQL && values![0] === 16500
        ? [
            { name: 'Sub"1', database: 'app', enabled: false },
            { name: 'late', database: 'app', enabled: true },
          ]
        : [],
    );
    const run = runOf(new Scripted(), planWith(disableSubscriptionsStep, {}, { state: st }).steps, { state: st, reader: r });
    expect(await disableSubscriptionsStep.refresh(run, run.report.steps)).toEqual([
      {
        action: 'disable_subscriptions',
        database: 'app',
        role: 'mallory',
        subscription: 'late',
        sql: ['ALTER SUBSCRIPTION "late" DISABLE', terminate([16500, 16501])],
        reason: 'created after the plan was made',
      },
    ]);
  });
});

describe('disable_subscriptions inverse', () => {
  it('disabled subscriptions stay disabled: a note; none disabled: nothing', () => {
    expect(disableSubscriptionsStep.inverse(restoreCtx(source([{ action: 'disable_subscriptions', status: 'done' }])))).toEqual({
      notes: ['disabled subscriptions stay disabled: ALTER SUBSCRIPTION ... ENABLE after review'],
    });
    expect(disableSubscriptionsStep.inverse(restoreCtx(source([{ action: 'disable_subscriptions', status: 'failed' }])))).toEqual({});
  });
});
