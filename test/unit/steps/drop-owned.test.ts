// The drop_owned step kind (sharing owned.ts with reassign_owned): its plan per role and database
// (a role with nothing listed still gets the database connected to: DROP OWNED also revokes), its
// skip on a standby, its position, its dry run, and its refresh.
import { describe, expect, it } from 'vitest';
import { STANDBY_DDL } from '../../../src/playbook/model.js';
import { OWNED_DATABASES_SQL } from '../../../src/playbook/sql.js';
import { dropOwnedStep } from '../../../src/playbook/steps/drop-owned.js';
import {
  dryApply,
  executed,
  MALLORY,
  planState,
  planWith,
  playbookStep,
  QUOTED,
  reader,
  runOf,
  Scripted,
  standbyState,
} from './fixtures.js';

const owned = () =>
  planState({
    targets: [MALLORY, QUOTED],
    ownedDatabases: [
      { role: 'mallory', databases: ['app'], shared: false },
      { role: 'x"y', databases: [], shared: false },
    ],
  });

describe('drop_owned plan', () => {
  it('per role and database; a role with nothing listed still gets the database connected to', () => {
    const { steps } = planWith(dropOwnedStep, {}, { state: owned() });
    expect(steps).toEqual([
      {
        action: 'drop_owned',
        database: 'app',
        role: 'mallory',
        sql: ['DROP OWNED BY "mallory"'],
        reason: 'privileges granted to the role in "app" are revoked',
      },
      {
        action: 'drop_owned',
        database: 'maindb',
        role: 'x"y',
        sql: ['DROP OWNED BY "x""y"'],
        reason: 'privileges granted to the role in "maindb" are revoked',
      },
    ]);
  });

  it('on a standby: one step skipped as DDL', () => {
    expect(planWith(dropOwnedStep, {}, { state: standbyState() }).steps.map((s) => [s.sql, s.skip])).toEqual([[[], STANDBY_DDL]]);
  });

  it('takes no fields; must come after contain; needs no --reassign-to', () => {
    expect(() => playbookStep(dropOwnedStep, { to: 'heir' })).toThrow();
    expect(dropOwnedStep.order([{ action: 'drop_owned' }, { action: 'contain' }], 0)).toBe('"drop_owned" must come after "contain"');
    expect(dropOwnedStep.order([{ action: 'contain' }, { action: 'drop_owned' }], 1)).toBeNull();
    expect('options' in dropOwnedStep).toBe(false);
  });
});

describe('drop_owned apply', () => {
  it('dry run: the planned statement in its database', async () => {
    const { steps } = planWith(dropOwnedStep, {}, { state: owned() });
    for (const at of [0, 1]) {
      const { detail, log, step } = await dryApply(dropOwnedStep, steps, at, { state: owned() });
      expect(executed(log)).toEqual(step.sql);
      expect(log.map((l) => l.database)).toEqual([step.database]);
      expect(detail).toBe(`would run in ${step.database}`);
    }
  });

  it('real run (scripted): as planned', async () => {
    const { steps } = planWith(dropOwnedStep, {}, { state: owned() });
    const exec = new Scripted();
    const run = runOf(exec, steps, { state: owned() });
    expect(await dropOwnedStep.apply(run, run.report.steps[0]!)).toBe('done in app');
    expect(executed(exec.log)).toEqual(['DROP OWNED BY "mallory"']);
  });

  it('refresh: a database that came to hold objects after the plan', async () => {
    const r = reader((sql, values) => (sql === OWNED_DATABASES_SQL && values![0] === 16501 ? [{ database: 'late', shared: false }] : []));
    const run = runOf(new Scripted(), planWith(dropOwnedStep, {}, { state: owned() }).steps, { state: owned(), reader: r });
    expect((await dropOwnedStep.refresh(run, run.report.steps)).map((d) => [d.role, d.database, d.sql])).toEqual([
      ['x"y', 'late', ['DROP OWNED BY "x""y"']],
    ]);
  });
});
