// The verify step kind: its plan (read-only, no statement), that it runs after a failed contain,
// its dry run (nothing read, nothing logged), and a real run over a role the run dropped (only its
// sessions are looked at): contained, or exposed with the finding on the report's list.
import { describe, expect, it } from 'vitest';
import { ROLE_SESSIONS_SQL } from '../../../src/checks/sessions.js';
import { DryRunExecutor } from '../../../src/playbook/executor.js';
import { ROLE_BY_OID_SQL } from '../../../src/pg/roles.js';
import { verifyStep } from '../../../src/playbook/steps/verify.js';
import { dryApply, executed, MALLORY, planState, planWith, playbookStep, QUOTED, reader, runOf } from './fixtures.js';

describe('verify plan', () => {
  it('one read-only step with no statement of its own', () => {
    expect(planWith(verifyStep).steps).toEqual([
      {
        action: 'verify',
        database: null,
        role: null,
        sql: [],
        reason: 'read-only: the same collection and evaluation as pgrevoke inspect, per role',
      },
    ]);
  });

  it('takes no fields, has no position rule, and still runs after the contain step failed', () => {
    expect(() => playbookStep(verifyStep, { strict: true })).toThrow();
    expect('order' in verifyStep).toBe(false);
    expect(verifyStep.afterFailedContain).toBe(true);
  });
});

describe('verify apply', () => {
  it('dry run: nothing read, nothing logged, as planned', async () => {
    const r = reader();
    const { steps } = planWith(verifyStep);
    const { detail, log, run } = await dryApply(verifyStep, steps, 0, { reader: r });
    expect(detail).toBe('would collect and evaluate each role as pgrevoke inspect does');
    expect(executed(log)).toEqual(steps[0]!.sql);
    expect(r.queries).toEqual([]);
    expect(run.report.verification).toEqual([]);
  });

  it('real run over dropped roles: one with a session left is exposed (on the list), one without is contained', async () => {
    const st = planState({ targets: [MALLORY, QUOTED] });
    const r = reader((sql, values) => {
      if (sql === ROLE_BY_OID_SQL) return [];
      if (sql === ROLE_SESSIONS_SQL && values![0] === MALLORY.oid)
        return [
          { pid: 4242, datname: 'app', usename: 'mallory', usesysid: MALLORY.oid, backend_type: 'client backend', query: 'SELECT 1' },
        ];
      return [];
    });
    const exec = Object.assign(new DryRunExecutor(), { dryRun: false });
    const run = runOf(exec, planWith(verifyStep, {}, { state: st }).steps, { state: st, reader: r });
    const detail = await verifyStep.apply(run);
    expect(detail).toBe('"mallory" exposed (sessions.active); "x\\"y" contained');
    expect(run.report.verification.map((v) => [v.role, v.oid, v.verdict, v.after])).toEqual([
      ['mallory', 16500, 'exposed', null],
      ['x"y', 16501, 'contained', null],
    ]);
    expect(run.report.exposure).toEqual(['"mallory": sessions.active: 1 open session(s) still running as the role']);
    expect(exec.log).toEqual([]);
  });
});
