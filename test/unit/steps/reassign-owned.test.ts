// The reassign_owned step kind (and the planning it shares with drop_owned in owned.ts): its
// option (--reassign-to over the playbook's `to`), its plan per role and database (shared objects
// only: the database connected to; nothing: one skipped step), the refusal without a target role,
// its position, its dry run (as planned, in each database), and its refresh.
import { describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../../src/errors.js';
import { STANDBY_DDL } from '../../../src/playbook/model.js';
import { OWNED_DATABASES_SQL } from '../../../src/playbook/sql.js';
import { reassignOwnedStep } from '../../../src/playbook/steps/reassign-owned.js';
import {
  dryApply,
  executed,
  MALLORY,
  NODE,
  planState,
  planWith,
  playbookStep,
  QUOTED,
  reader,
  roleInfo,
  runOf,
  Scripted,
  standbyState,
} from './fixtures.js';

const CAROL = roleInfo('carol', 16502);
const owned = () =>
  planState({
    targets: [MALLORY, QUOTED, CAROL],
    ownedDatabases: [
      { role: 'mallory', databases: ['app', 'reports'], shared: false },
      { role: 'x"y', databases: [], shared: true },
      { role: 'carol', databases: [], shared: false },
    ],
  });
const to = { options: { reassignTo: 'heir "2"' } };

describe('reassign_owned options', () => {
  it('the playbook `to`, with --reassign-to over it', () => {
    expect(reassignOwnedStep.options(playbookStep(reassignOwnedStep), { roles: [] })).toEqual({ reassignTo: null });
    expect(reassignOwnedStep.options(playbookStep(reassignOwnedStep, { to: 'heir' }), { roles: [] })).toEqual({ reassignTo: 'heir' });
    expect(reassignOwnedStep.options(playbookStep(reassignOwnedStep, { to: 'heir' }), { roles: [], reassignTo: 'other' })).toEqual({
      reassignTo: 'other',
    });
    expect(() => playbookStep(reassignOwnedStep, { to: '' })).toThrow();
  });
});

describe('reassign_owned plan', () => {
  it('per role, one step per database holding its objects; shared objects only: the database connected to; nothing: skipped', () => {
    const { steps } = planWith(reassignOwnedStep, {}, { state: owned(), ...to });
    expect(steps.map((s) => [s.role, s.database, s.sql, s.skip ?? null])).toEqual([
      ['mallory', 'app', ['REASSIGN OWNED BY "mallory" TO "heir ""2"""'], null],
      ['mallory', 'reports', ['REASSIGN OWNED BY "mallory" TO "heir ""2"""'], null],
      ['x"y', 'maindb', ['REASSIGN OWNED BY "x""y" TO "heir ""2"""'], null],
      ['carol', null, [], 'the role owns nothing and holds no privileges'],
    ]);
    expect(steps[0]!.reason).toBe('objects of the role in "app" go to "heir ""2"""');
    expect(steps[3]!.reason).toBe('pg_shdepend lists no object of the role');
  });

  it('without a role to reassign to: a usage error (exit 2) naming the playbook and the flag', () => {
    let err: unknown;
    try {
      planWith(reassignOwnedStep, {}, { state: owned() });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PgrevokeError);
    expect((err as PgrevokeError).exitCode).toBe(2);
    expect((err as Error).message).toBe("playbook test-playbook reassigns the role's objects: say to whom with --reassign-to ROLE");
  });

  it('on a standby: one step skipped as DDL', () => {
    expect(planWith(reassignOwnedStep, {}, { state: standbyState(), ...to }).steps).toEqual([
      { action: 'reassign_owned', database: null, role: null, sql: [], reason: 'objects are catalog rows', skip: STANDBY_DDL },
    ]);
  });

  it('must come after contain', () => {
    expect(reassignOwnedStep.order([{ action: 'reassign_owned' }, { action: 'contain' }], 0)).toBe(
      '"reassign_owned" must come after "contain"',
    );
    expect(reassignOwnedStep.order([{ action: 'contain' }, { action: 'reassign_owned' }], 1)).toBeNull();
  });
});

describe('reassign_owned apply', () => {
  it('dry run: each step its planned statement, in its database; the detail names where', async () => {
    const st = owned();
    const { steps } = planWith(reassignOwnedStep, {}, { state: st, ...to });
    for (const at of [0, 1, 2]) {
      const { detail, log, step, run } = await dryApply(reassignOwnedStep, steps, at, { state: st, ...to });
      expect(executed(log)).toEqual(step.sql);
      expect(log.map((l) => l.database)).toEqual([step.database]);
      expect(detail).toBe(`would run in ${step.database}`);
      expect(run.changed).toBe(false);
    }
  });

  it('real run (scripted): as planned, and the run knows something changed', async () => {
    const { steps } = planWith(reassignOwnedStep, {}, { state: owned(), ...to });
    const exec = new Scripted();
    const run = runOf(exec, steps, { state: owned(), ...to });
    expect(await reassignOwnedStep.apply(run, run.report.steps[1]!)).toBe('done in reports');
    expect(executed(exec.log)).toEqual(steps[1]!.sql);
    expect(run.changed).toBe(true);
  });

  it('a step without a database says the node', async () => {
    const drafts = [
      { action: 'reassign_owned' as const, database: null, role: 'mallory', sql: ['REASSIGN OWNED BY "mallory" TO "heir"'], reason: '' },
    ];
    expect((await dryApply(reassignOwnedStep, drafts)).detail).toBe(`would run in ${NODE}`);
  });

  it('refresh: a database that came to hold objects after the plan becomes a step; shared rows and known databases do not', async () => {
    const st = owned();
    const r = reader((sql, values) =>
      sql === OWNED_DATABASES_SQL && values![0] === 16500
        ? [
            { database: 'app', shared: false },
            { database: 'late', shared: false },
            { database: null, shared: true },
          ]
        : [],
    );
    const run = runOf(new Scripted(), planWith(reassignOwnedStep, {}, { state: st, ...to }).steps, { state: st, reader: r, ...to });
    expect(await reassignOwnedStep.refresh(run, run.report.steps)).toEqual([
      {
        action: 'reassign_owned',
        database: 'late',
        role: 'mallory',
        sql: ['REASSIGN OWNED BY "mallory" TO "heir ""2"""'],
        reason: 'objects appeared in this database after the plan was made',
      },
    ]);
  });
});
