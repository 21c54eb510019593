// The hba_reject step kind: its plan (the file edit as a note, the reload and the two checks; the
// skips and warnings), its position (after settle, or after contain without one), its dry run (the
// same four entries, no file touched), a real edit through a scripted server on a file of the
// test's own, and its inverse (the block out of the recorded file, or a note).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { replaceFile, withBlocks } from '../../../src/playbook/hba-file.js';
import type { PlanStep } from '../../../src/playbook/model.js';
import { HBA_ERRORS_SQL, HBA_OURS_SQL, RELOAD_CONF } from '../../../src/playbook/sql.js';
import { StepSkipped } from '../../../src/playbook/steps/kind.js';
import { hbaNote, hbaRejectStep } from '../../../src/playbook/steps/hba-reject.js';
import {
  dryApply,
  executed,
  MALLORY,
  planState,
  planWith,
  playbookStep,
  QUOTED,
  restoreCtx,
  rows,
  runOf,
  Scripted,
  source,
} from './fixtures.js';

// the HBA file lock goes to a state directory of the test's own
process.env.PGREVOKE_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-steps-hba-state-'));

const FILE = '/data/pg_hba.conf';
const both = () => planState({ targets: [MALLORY, QUOTED] });

describe('hba_reject plan', () => {
  it('the edit as a note, then reload, the error rows and the reject rules read back', () => {
    const { steps, warnings } = planWith(hbaRejectStep, {}, { state: both() });
    expect(steps).toEqual([
      {
        action: 'hba_reject',
        database: null,
        role: null,
        file: FILE,
        sql: ['-- prepend reject lines for "mallory", "x""y" to /data/pg_hba.conf', RELOAD_CONF, HBA_ERRORS_SQL, HBA_OURS_SQL],
        reason:
          'stop new logins at pg_hba.conf (first match wins: the block goes at the top); checked in pg_hba_file_rules, restored on error',
      },
    ]);
    expect(warnings).toEqual([]);
  });

  it('a role whose block is already there, or whose name the file cannot express, is left out (the latter warned)', () => {
    const st = both();
    st.hba = { ...st.hba, present: ['mallory'], perRole: { mallory: null, 'x"y': 'the role name contains a NUL byte' } };
    const three = { ...st, targets: [...st.targets, { ...MALLORY, oid: 16503, name: 'carol' }] };
    three.hba.perRole.carol = null;
    const { steps, warnings } = planWith(hbaRejectStep, {}, { state: three });
    expect(steps[0]!.sql[0]).toBe(hbaNote(['carol'], FILE));
    expect(steps[0]!.sql[0]).toBe('-- prepend reject lines for "carol" to /data/pg_hba.conf');
    expect(warnings).toEqual(['HBA step skipped for "x\\"y": the role name contains a NUL byte']);
  });

  it('no file access: one skipped step with the reason and no statement', () => {
    const st = planState();
    st.hba = { file: null, skip: 'the server is not local: NOLOGIN is the lever', perRole: {}, present: [] };
    expect(planWith(hbaRejectStep, {}, { state: st }).steps).toEqual([
      {
        action: 'hba_reject',
        database: null,
        role: null,
        sql: [],
        reason: 'stop new logins at pg_hba.conf',
        skip: 'the server is not local: NOLOGIN is the lever',
        file: undefined,
      },
    ]);
  });
});

describe('hba_reject position', () => {
  const steps = (...a: string[]) => a.map((action) => ({ action }));

  it('after settle: the reload would wake a backend sleeping in the post-authentication window', () => {
    expect(hbaRejectStep.order(steps('contain', 'hba_reject', 'settle'), 1)).toBe(
      '"hba_reject" must come after "settle": the configuration reload wakes backends sleeping in the post-authentication window, which would then run as the role',
    );
    expect(hbaRejectStep.order(steps('contain', 'settle', 'hba_reject'), 2)).toBeNull();
  });

  it('without settle: after contain', () => {
    expect(hbaRejectStep.order(steps('hba_reject', 'contain'), 0)).toMatch(/^"hba_reject" must come after "contain": /);
    expect(hbaRejectStep.order(steps('snapshot', 'contain', 'hba_reject'), 2)).toBeNull();
  });

  it('takes no fields', () => {
    expect(() => playbookStep(hbaRejectStep, { file: '/x' })).toThrow();
  });
});

describe('hba_reject apply', () => {
  it('dry run: the note, reload and checks as planned; no file touched', async () => {
    const st = both();
    const { steps } = planWith(hbaRejectStep, {}, { state: st });
    const { detail, log, run, step } = await dryApply(hbaRejectStep, steps, 0, { state: st });
    expect(detail).toBe('would prepend a reject block for 2 role(s) to /data/pg_hba.conf, reload, and check pg_hba_file_rules');
    expect(executed(log)).toEqual(step.sql);
    expect(log.map((l) => l.database)).toEqual([null, null, null, null]);
    expect(run.report.hba).toBeNull();
    expect(run.changed).toBe(false);
  });

  it('real run: hidden backends still unresolved: skipped, since the reload would wake them', async () => {
    const { steps } = planWith(hbaRejectStep);
    const run = runOf(new Scripted(), steps);
    run.addSuspects([{ pid: 777, via: 'virtualxid', backend_start: null, client_addr: null }]);
    const err = await hbaRejectStep.apply(run, run.report.steps[0]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepSkipped);
    expect((err as Error).message).toMatch(/^hidden backend\(s\) 777 are still unresolved: a configuration reload signals every backend/);
  });

  it('real run (scripted server, a file of its own): the block at the top, the same statements as planned', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-steps-hba-'));
    const file = path.join(dir, 'pg_hba.conf');
    const original = 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n';
    writeFileSync(file, original);
    const st = planState();
    st.hba = { ...st.hba, file };
    const { steps } = planWith(hbaRejectStep, {}, { state: st });
    class Writing extends Scripted {
      override async writeFile(step: PlanStep, f: string, content: string, note: string) {
        await super.writeFile(step, f, content, note);
        return replaceFile(f, content) as never;
      }
    }
    const exec = new Writing((sql) =>
      sql === HBA_OURS_SQL ? [rows({ line_number: 2, user_name: ['mallory'] }, { line_number: 3, user_name: ['mallory'] })] : [],
    );
    const run = runOf(exec, steps, { state: st });
    const detail = await hbaRejectStep.apply(run, run.report.steps[0]!);
    expect(detail).toMatch(
      new RegExp(`^prepended 4 line\\(s\\) to ${file} \\(reject rules now at line\\(s\\) 2, 3\\); backup .+; reloaded; no error rows$`),
    );
    expect(executed(exec.log)).toEqual(steps[0]!.sql);
    const now = readFileSync(file, 'utf8').split('\n');
    expect(now.slice(1, 4)).toEqual([
      'local all,replication "mallory" reject',
      'host all,replication "mallory" all reject',
      '# pgrevoke cutoff END "mallory"',
    ]);
    expect(now.slice(4).join('\n')).toBe(original);
    expect(run.report.hba).toMatchObject({ file, written: file, lines: now.slice(0, 4) });
    expect(run.changed).toBe(true);
  });
});

describe('hba_reject inverse', () => {
  const original = 'local all all trust\n';
  const withBlock = withBlocks(original, ['mallory'], new Date(0))!.content;
  const report = source([{ action: 'hba_reject', status: 'done' }], { hba: { file: FILE, backup: null, lines: [] } });

  it("the role's block comes out of the recorded file", () => {
    expect(hbaRejectStep.inverse(restoreCtx(report, { hbaContent: withBlock }))).toEqual({ hba: { file: FILE, content: original } });
  });

  it('no block there any more (or the file unreadable): a note, no edit', () => {
    const note = { notes: ['no pgrevoke block for "mallory" in /data/pg_hba.conf (already removed, or edited by hand)'] };
    expect(hbaRejectStep.inverse(restoreCtx(report, { hbaContent: original }))).toEqual(note);
    expect(hbaRejectStep.inverse(restoreCtx(report, { hbaContent: null }))).toEqual(note);
  });

  it('a report without an HBA edit: nothing to undo', () => {
    expect(hbaRejectStep.inverse(restoreCtx(source([]), { hbaContent: withBlock }))).toEqual({});
  });
});
