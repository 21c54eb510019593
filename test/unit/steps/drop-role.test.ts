// The drop_role step kind: its plan (one DROP ROLE per target; skipped on a standby), its position
// (after contain, and after both reassign_owned and drop_owned), and its dry run.
import { describe, expect, it } from 'vitest';
import { STANDBY_DDL } from '../../../src/playbook/model.js';
import { dropRoleStep } from '../../../src/playbook/steps/drop-role.js';
import { dryApply, executed, MALLORY, NODE, planState, planWith, playbookStep, QUOTED, runOf, Scripted, standbyState } from './fixtures.js';

const steps = (...a: string[]) => a.map((action) => ({ action }));
const NEEDS = '"drop_role" needs "reassign_owned" and "drop_owned" before it';

describe('drop_role plan', () => {
  it('one DROP ROLE per target, on the main connection', () => {
    expect(planWith(dropRoleStep, {}, { state: planState({ targets: [MALLORY, QUOTED] }) }).steps).toEqual([
      {
        action: 'drop_role',
        database: null,
        role: 'mallory',
        sql: ['DROP ROLE "mallory"'],
        reason: 'the role is gone; its OID is kept in the report',
      },
      {
        action: 'drop_role',
        database: null,
        role: 'x"y',
        sql: ['DROP ROLE "x""y"'],
        reason: 'the role is gone; its OID is kept in the report',
      },
    ]);
  });

  it('on a standby: one step skipped as DDL', () => {
    expect(planWith(dropRoleStep, {}, { state: standbyState() }).steps).toEqual([
      { action: 'drop_role', database: null, role: null, sql: [], reason: 'roles are cluster-wide', skip: STANDBY_DDL },
    ]);
  });
});

describe('drop_role position', () => {
  it('after reassign_owned and drop_owned', () => {
    expect(dropRoleStep.order(steps('contain', 'reassign_owned', 'drop_owned', 'drop_role'), 3)).toBeNull();
    expect(dropRoleStep.order(steps('contain', 'drop_owned', 'reassign_owned', 'drop_role'), 3)).toBeNull();
  });

  it.each([
    [['contain', 'drop_role'], 1],
    [['contain', 'reassign_owned', 'drop_role'], 2],
    [['contain', 'drop_owned', 'drop_role'], 2],
    [['contain', 'reassign_owned', 'drop_role', 'drop_owned'], 2],
    [['contain', 'drop_role', 'reassign_owned', 'drop_owned'], 1],
  ])('%j: refused', (actions, at) => {
    expect(dropRoleStep.order(steps(...actions), at)).toBe(NEEDS);
  });

  it('after contain first of all', () => {
    expect(dropRoleStep.order(steps('reassign_owned', 'drop_owned', 'drop_role', 'contain'), 2)).toBe(
      '"drop_role" must come after "contain"',
    );
  });

  it('takes no fields', () => {
    expect(() => playbookStep(dropRoleStep, { cascade: true })).toThrow();
  });
});

describe('drop_role apply', () => {
  it('dry run: the planned DROP ROLE; the detail names the node', async () => {
    const { steps: planned } = planWith(dropRoleStep);
    const { detail, log, step, run } = await dryApply(dropRoleStep, planned);
    expect(detail).toBe(`would run in ${NODE}`);
    expect(executed(log)).toEqual(step.sql);
    expect(log).toEqual([{ step: 0, action: 'drop_role', database: null, sql: 'DROP ROLE "mallory"' }]);
    expect(run.changed).toBe(false);
  });

  it('real run (scripted): as planned; done', async () => {
    const { steps: planned } = planWith(dropRoleStep);
    const exec = new Scripted();
    const run = runOf(exec, planned);
    expect(await dropRoleStep.apply(run, run.report.steps[0]!)).toBe('done');
    expect(executed(exec.log)).toEqual(['DROP ROLE "mallory"']);
    expect(run.changed).toBe(true);
  });
});
