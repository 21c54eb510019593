// The settle step kind: its plan (one round-trip statement), its options (the flags over the
// playbook's), its position (after contain), its dry run (the logged rounds are the planned
// statement), and the loop's real-run paths through a scripted executor: LOGIN switched back on is
// re-applied, a dropped role is noted, a busy role times out, an interrupt stops it.
import { describe, expect, it } from 'vitest';
import { DryRunExecutor } from '../../../src/playbook/executor.js';
import { reapply, settleRound } from '../../../src/playbook/sql.js';
import { Interrupted } from '../../../src/playbook/steps/kind.js';
import { settleStep } from '../../../src/playbook/steps/settle.js';
import { dryApply, executed, MALLORY, planState, planWith, playbookStep, QUOTED, rows, runOf, Scripted } from './fixtures.js';

const fast = { settle: { timeoutS: 10, hiddenGraceMs: 250, intervalMs: 1 } };

describe('settle plan', () => {
  it('one step with the round statement over every target; the reason carries the settings', () => {
    const st = planState({ targets: [MALLORY, QUOTED] });
    const { steps } = planWith(settleStep, {}, { state: st, options: { settle: { timeoutS: 2.5, hiddenGraceMs: 100, intervalMs: 40 } } });
    expect(steps).toEqual([
      {
        action: 'settle',
        database: null,
        role: null,
        sql: [settleRound([16500, 16501], 16)],
        reason:
          'every 40 ms: terminate by OID again, re-scan hidden backends, re-check LOGIN; until no backend twice in a row and every hidden suspect is resolved (hidden grace 100 ms, timeout 2.5 s)',
      },
    ]);
    const [lock, term, , roles] = steps[0]!.sql[0]!.split(';\n');
    expect(lock).toBe("SET LOCAL lock_timeout = '250ms'");
    expect(term).toMatch(/pg_terminate_backend\(a\.pid\)[\s\S]*'\{16500,16501\}'::oid\[\]/);
    expect(roles).toBe(
      "SELECT oid::int8 AS oid, rolname, rolcanlogin, rolsuper, rolcreaterole, rolconnlimit\nFROM pg_roles WHERE oid = ANY('{16500,16501}'::oid[])",
    );
  });

  it('PostgreSQL 18 scans the starting backends too', () => {
    const st = planState();
    const on18 = planWith(settleStep, {}, { state: { ...st, server: { ...st.server, major: 18 } } }).steps[0]!.sql[0]!;
    const on16 = planWith(settleStep, {}, { state: st }).steps[0]!.sql[0]!;
    expect(on18).toContain("backend_type = 'client backend'");
    expect(on18).not.toEqual(on16);
  });
});

describe('settle options and position', () => {
  it('playbook defaults; --settle-timeout and --hidden-grace over the playbook; the interval only from the playbook', () => {
    expect(settleStep.options(playbookStep(settleStep), { roles: [] })).toEqual({
      settle: { timeoutS: 10, hiddenGraceMs: 250, intervalMs: 20 },
    });
    const mine = playbookStep(settleStep, { timeout_s: 3, hidden_grace_ms: 50, interval_ms: 5 });
    expect(settleStep.options(mine, { roles: [] })).toEqual({ settle: { timeoutS: 3, hiddenGraceMs: 50, intervalMs: 5 } });
    expect(settleStep.options(mine, { roles: [], settleTimeoutS: 0.5, hiddenGraceMs: 0 })).toEqual({
      settle: { timeoutS: 0.5, hiddenGraceMs: 0, intervalMs: 5 },
    });
  });

  it.each([
    { timeout_s: 0 },
    { timeout_s: 3601 },
    { hidden_grace_ms: -1 },
    { hidden_grace_ms: 1.5 },
    { interval_ms: 0 },
    { interval_ms: 10_001 },
  ])('refuses %j', (fields) => {
    expect(() => playbookStep(settleStep, fields)).toThrow();
  });

  it('must come after contain', () => {
    expect(settleStep.order([{ action: 'settle' }, { action: 'contain' }], 0)).toBe('"settle" must come after "contain"');
    expect(settleStep.order([{ action: 'snapshot' }, { action: 'contain' }, { action: 'settle' }], 2)).toBeNull();
  });
});

describe('settle apply, dry run', () => {
  it('the rounds log exactly the planned statement; two rounds from nothing seen, one after the contain step counted one', async () => {
    const { steps } = planWith(settleStep, {}, { options: fast });
    const { detail, log, run, step } = await dryApply(settleStep, steps, 0, { options: fast });
    expect(detail).toBe('would repeat until no backend of the role is seen twice in a row and every hidden suspect is resolved');
    expect(executed(log)).toEqual(step.sql);
    expect(log.map((l) => [l.action, l.database])).toEqual([
      ['settle', null],
      ['settle', null],
    ]);
    expect(run.report.settle).toMatchObject({ iterations: 2, timedOut: false, suspects: [], reapplied: [], dropped: [] });
    expect(run.changed).toBe(false);

    const after = runOf(new DryRunExecutor(), steps, { options: fast });
    after.cleanScans = 1;
    await settleStep.apply(after, after.report.steps[0]!);
    expect(after.exec.log).toHaveLength(1);
  });
});

describe('settle apply, real run (scripted)', () => {
  /** Round answers: terminated rows, hidden rows, role rows, per round (the last repeats). */
  function server(roundsOf: { term?: Record<string, unknown>[]; hidden?: Record<string, unknown>[]; roles?: Record<string, unknown>[] }[]) {
    let n = 0;
    return new Scripted((sql) => {
      if (sql.includes('NOLOGIN')) return [rows(), rows(), rows(), rows(), rows()];
      const r = roundsOf[Math.min(n++, roundsOf.length - 1)]!;
      return [rows(), rows(...(r.term ?? [])), rows(...(r.hidden ?? [])), rows(...(r.roles ?? []))];
    });
  }
  const off = { oid: 16500, rolname: 'mallory', rolcanlogin: false, rolsuper: false, rolcreaterole: false, rolconnlimit: 0 };

  it('a quiet role: two clean rounds, the planned statement each time', async () => {
    const { steps } = planWith(settleStep, {}, { options: fast });
    const exec = server([{ roles: [off] }]);
    const run = runOf(exec, steps, { options: fast });
    const detail = await settleStep.apply(run, run.report.steps[0]!);
    expect(detail).toMatch(
      /^2 round\(s\) in \d+ ms; 0 backend\(s\) terminated in all; suspects: 0 \(0 left, 0 terminated while hidden, 0 unresolved\)$/,
    );
    expect(executed(exec.log)).toEqual(steps[0]!.sql);
  });

  it('LOGIN switched back on from a live session: NOLOGIN applied again, warned, and the loop goes on until quiet', async () => {
    const { steps } = planWith(settleStep, {}, { options: fast });
    const exec = server([{ roles: [{ ...off, rolcanlogin: true }] }, { roles: [off] }]);
    const run = runOf(exec, steps, { options: fast });
    const detail = await settleStep.apply(run, run.report.steps[0]!);
    expect(detail).toMatch(/^3 round\(s\) in \d+ ms; .*; NOLOGIN re-applied 1 time\(s\)$/);
    expect(executed(exec.log)).toEqual([steps[0]!.sql[0], reapply([MALLORY], 16, { strip: true })]);
    expect(run.report.settle!.reapplied.map((r) => r.role)).toEqual(['mallory']);
    expect(run.report.warnings).toEqual([
      '"mallory": LOGIN (or SUPERUSER/CREATEROLE, or the connection limit) was switched back on during the cutoff, presumably from a live session of the role: NOLOGIN applied again',
    ]);
  });

  it('a role gone from pg_roles is listed as dropped', async () => {
    const { steps } = planWith(settleStep, {}, { options: fast });
    const run = runOf(server([{ roles: [] }]), steps, { options: fast });
    await settleStep.apply(run, run.report.steps[0]!);
    expect(run.report.settle!.dropped).toEqual(['mallory']);
  });

  it('a backend seen every round: TIMED OUT, and the exposure says so', async () => {
    const options = { settle: { timeoutS: 0.05, hiddenGraceMs: 250, intervalMs: 5 } };
    const { steps } = planWith(settleStep, {}, { options });
    const term = [{ pid: 4242, usesysid: 16500, usename: 'mallory', terminated: true }];
    const run = runOf(server([{ term, roles: [off] }]), steps, { options });
    const detail = await settleStep.apply(run, run.report.steps[0]!);
    expect(detail).toMatch(/; 1 backend\(s\) terminated in all; .*; TIMED OUT$/);
    expect(run.report.settle!.timedOut).toBe(true);
    expect(run.report.exposure).toEqual(['backends of the role were still seen when the 0.05 s settle timeout ran out']);
    expect(run.report.terminated.map((t) => t.pid)).toEqual([4242]);
  });

  it('an interrupt before a round stops the step', async () => {
    const { steps } = planWith(settleStep, {}, { options: fast });
    const exec = server([{ roles: [off] }]);
    const run = runOf(exec, steps, { options: fast });
    run.interrupt.trigger('SIGTERM');
    await expect(settleStep.apply(run, run.report.steps[0]!)).rejects.toBeInstanceOf(Interrupted);
    expect(exec.log).toEqual([]);
  });
});
