import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejectBlock, withBlocks, withoutBlock } from '../../src/playbook/hba-file.js';
import { planRestore, readSections, type RestoreSource } from '../../src/playbook/restore.js';

const at = new Date('2026-11-23T20:00:00Z');
const report = (over: Partial<RestoreSource> = {}): RestoreSource => ({
  schemaVersion: 1,
  dryRun: false,
  roles: [
    { name: 'a"b', oid: 16400, before: { canLogin: true, superuser: true, createRole: false, connectionLimit: 5, validUntil: null } },
  ],
  hba: { file: '/data/pg_hba.conf', backup: '/data/pg_hba.conf.bak', lines: [] },
  steps: [
    {
      action: 'contain',
      status: 'done',
      detail: null,
      sql: [`ALTER ROLE "a""b" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE PASSWORD '*****'`],
    },
    { action: 'rollback_prepared', status: 'done', detail: null, sql: [] },
  ],
  ...over,
});

describe('restore planning (pure)', () => {
  const hba = withBlocks('local all all trust\n', ['a"b', 'other'], at)!.content;

  it('rebuilds the attributes from the report with the quoting helper, and removes only that role\u2019s HBA block', () => {
    const plan = planRestore(report(), 'a"b', 16400, hba);
    expect(plan.alter).toBe('ALTER ROLE "a""b" LOGIN CONNECTION LIMIT 5 SUPERUSER');
    expect(plan.reload).toBe('SELECT pg_reload_conf()');
    expect(plan.hba!.content).not.toContain('"a""b" reject');
    expect(plan.hba!.content).toContain('"other" reject');
    expect(plan.hba!.content).toContain('local all all trust');
  });

  it('says what cannot come back', () => {
    const notes = planRestore(report(), 'a"b', 16400, hba).notes.join('\n');
    expect(notes).toContain('password was rotated');
    expect(notes).toContain('prepared transactions cannot be restored');
  });

  it('on a standby only the HBA block comes out: no ALTER (read-only; LOGIN comes back by replay), and it says so', () => {
    const plan = planRestore(report(), 'a"b', 16400, hba, { standby: true });
    expect(plan.alter).toBeNull();
    expect(plan.reload).toBe('SELECT pg_reload_conf()');
    expect(plan.hba!.content).not.toContain('"a""b" reject');
    expect(plan.hba!.content).toContain('"other" reject');
    expect(plan.notes.join('\n')).toMatch(/standby: LOGIN.*come back by replay/);
  });

  it('refuses a dry-run report, an uncovered role, a dropped or recreated role', () => {
    expect(() => planRestore(report({ dryRun: true }), 'a"b', 16400, hba)).toThrow(/dry run/);
    expect(() => planRestore(report(), 'zed', 16400, hba)).toThrow(/does not cover role "zed"/);
    expect(() => planRestore(report(), 'a"b', null, hba)).toThrow(/no longer exists/);
    expect(() => planRestore(report(), 'a"b', 17000, hba)).toThrow(/now has OID 17000, not 16400/);
  });

  it('without a block (removed, or hand-edited) it touches no file and says so', () => {
    const plan = planRestore(report(), 'a"b', 16400, 'local all all trust\n');
    expect(plan.hba).toBeNull();
    expect(plan.alter).toMatch(/^ALTER ROLE/);
    expect(plan.reload).toBeNull();
    expect(plan.notes.join('\n')).toContain('no pgrevoke block');
    const handEdited = rejectBlock('a"b', at).slice(0, 3).join('\n') + '\nlocal all all trust\n';
    expect(withoutBlock(handEdited, 'a"b')).toBeNull();
  });
});

describe('restore from a report over several nodes', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-restore-'));
  const file = path.join(dir, 'fleet.json');
  writeFileSync(
    file,
    JSON.stringify({
      schemaVersion: 1,
      kind: 'fleet',
      nodes: [
        { node: 'db-1', role: 'primary', report: report() },
        { node: 'db-2', role: 'standby', report: report() },
        { node: 'db-3', role: null, report: null },
      ],
    }),
  );

  it('without --node: every section where the cutoff ran, primaries first, and the untouched nodes with why', () => {
    const primaryLast = path.join(dir, 'standby-first.json');
    writeFileSync(
      primaryLast,
      JSON.stringify({
        schemaVersion: 1,
        kind: 'fleet',
        nodes: [
          { node: 'db-2', role: 'standby', report: report() },
          { node: 'db-1', role: 'primary', report: report() },
          { node: 'db-3', role: null, status: 'unreachable', report: null },
        ],
      }),
    );
    const all = readSections(primaryLast);
    expect(all.fleet).toBe(true);
    expect(all.sections.map((x) => [x.node, x.standby])).toEqual([
      ['db-1', false],
      ['db-2', true],
    ]);
    expect(all.untouched).toEqual([{ node: 'db-3', why: 'unreachable: the cutoff changed nothing there' }]);
  });

  it('--node takes that section (a standby one as a standby), and names the nodes it could restore', () => {
    expect(() => readSections(file, 'db-9')).toThrow(/no report for node "db-9".*/);
    expect(readSections(file, 'db-1').sections).toMatchObject([{ node: 'db-1', standby: false, source: { roles: [{ name: 'a"b' }] } }]);
    expect(readSections(file, 'db-2').sections).toMatchObject([{ node: 'db-2', standby: true }]);
  });

  it('a one-node report is one section; --node with it is refused; a file that is no report is refused', () => {
    const single = path.join(dir, 'one.json');
    writeFileSync(single, JSON.stringify(report()));
    expect(readSections(single)).toMatchObject({ fleet: false, sections: [{ node: null, standby: false }], untouched: [] });
    expect(() => readSections(single, 'db-1')).toThrow(/--node applies to a report over several nodes/);
    const junk = path.join(dir, 'junk.json');
    writeFileSync(junk, JSON.stringify({ kind: 'fleet', nodes: [{ node: 'x', role: 'primary', report: { hello: 1 } }] }));
    expect(() => readSections(junk)).toThrow(/node x is not a pgrevoke cutoff report/);
  });
});
