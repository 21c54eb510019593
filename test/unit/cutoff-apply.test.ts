// apply() through a scripted executor: the HBA step's failure path (error rows after the edit put
// the backup back and reload again) and the contain step's failure before the COMMIT (exit 2).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OperatorFacts, Queryable, RoleInfo } from '../../src/checks/types.js';
import { apply } from '../../src/playbook/apply.js';
import { loggedSession, type Executor, type Recorded, type ResultSet } from '../../src/playbook/executor.js';
import { replaceFile, restoreFile } from '../../src/playbook/hba-file.js';
import { parsePlaybook } from '../../src/playbook/schema.js';
import { buildPlan } from '../../src/playbook/plan.js';
import { HBA_ERRORS_SQL } from '../../src/playbook/sql.js';
import type { PlanState, PlanStep } from '../../src/playbook/model.js';
import type { Statement } from '../../src/playbook/sql.js';
import { resolveConnParams } from '../../src/pg/conninfo.js';

const role: RoleInfo = {
  oid: 16500,
  name: 'x"y',
  superuser: false,
  inherit: true,
  createRole: false,
  createDb: false,
  canLogin: true,
  replication: false,
  bypassRls: false,
  connectionLimit: -1,
  validUntil: null,
  expired: false,
};
const operator: OperatorFacts = {
  user: 'postgres',
  superuser: true,
  createRole: true,
  signalBackend: true,
  memberOfTarget: true,
  readHba: true,
  reload: true,
  statFile: true,
};
const params = resolveConnParams({ dsn: 'postgresql://postgres@db.example:5432/postgres' }, {});

class Scripted implements Executor {
  readonly dryRun = false;
  readonly log: Recorded[] = [];
  constructor(private readonly answer: (sql: string) => ResultSet[] | Error) {}
  async run(step: PlanStep, stmt: Statement | string): Promise<ResultSet[]> {
    const sql = typeof stmt === 'string' ? stmt : stmt.display;
    this.log.push({ step: step.index, action: step.action, database: step.database, sql });
    const a = this.answer(sql);
    if (a instanceof Error) throw a;
    return a;
  }
  async isolated(step: PlanStep, database: string) {
    return loggedSession(this, step, database);
  }
  async writeFile(step: PlanStep, file: string, content: string, note: string) {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
    return replaceFile(file, content);
  }
  async restoreFile(step: PlanStep, file: string, backup: string, note: string) {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
    await restoreFile(file, backup);
  }
  async signalBackends(step: PlanStep, pids: readonly number[]) {
    this.log.push({ step: step.index, action: step.action, database: null, sql: `-- SIGTERM ${pids.join(',')}` });
    return [];
  }
  async close() {}
}

// backups and the HBA lock go to a state directory of the test's own
process.env.PGREVOKE_STATE_DIR = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-apply-state-'));

function setup(hbaText: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-apply-'));
  const file = path.join(dir, 'pg_hba.conf');
  writeFileSync(file, hbaText);
  const state: PlanState = {
    server: { version: 'PostgreSQL 16.4', versionNum: 160004, major: 16, inRecovery: false, hbaFile: file, dataDirectory: dir },
    targets: [role],
    prepared: [],
    subscriptions: [],
    ownedDatabases: [],
    hba: { file, skip: null, perRole: { [role.name]: null }, present: [] },
    adminOf: [role.name],
    administered: [],
  };
  const playbook = { ...parsePlaybook('name: t\nreason: compromise\nsteps:\n  - action: contain\n  - action: hba_reject\n', 't.yaml') };
  const plan = buildPlan(playbook, state, operator, params, { roles: [role.name] });
  const reader: Queryable = { query: async () => ({ rows: [] }) };
  return { file, state, plan, reader };
}

const who = { user: 'postgres', osUser: 'ops', host: 'box', superuser: true };
// no server here: the pg_hba.conf server lock (its own session in template1) is a stand-in
const hbaServerLock = () => Promise.resolve({ release: () => Promise.resolve() });

describe('apply, failure paths', () => {
  it('error rows after the HBA edit: the backup goes back, the configuration is reloaded again, the step fails (exit 3)', async () => {
    const original = 'local all all trust\n';
    const { file, state, plan, reader } = setup(original);
    let reloads = 0;
    const exec = new Scripted((sql) => {
      if (sql === 'SELECT pg_reload_conf()') reloads++;
      if (sql === HBA_ERRORS_SQL)
        return [{ command: 'SELECT', rowCount: 1, rows: [{ line_number: 7, error: 'invalid connection type "hots"' }] }];
      return [];
    });
    const report = await apply({ plan, state, exec, reader, params, operator: who, hbaServerLock });
    const hba = report.steps.find((s) => s.action === 'hba_reject')!;
    expect(hba.status).toBe('failed');
    expect(hba.detail).toContain('line 7: invalid connection type "hots"');
    expect(hba.detail).toContain('backup was restored');
    expect(readFileSync(file, 'utf8')).toBe(original);
    expect(reloads).toBe(2);
    expect(exec.log.filter((l) => l.action === 'hba_reject').map((l) => l.sql.split(' ').slice(0, 3).join(' '))).toEqual([
      '-- prepend reject',
      'SELECT pg_reload_conf()',
      'SELECT line_number, error',
      '-- restore ' + file,
      'SELECT pg_reload_conf()',
    ]);
    expect(report.exitCode).toBe(3);
  });

  it('a failure inside the round trip before the COMMIT changed nothing: exit 2, the rest not run', async () => {
    const { file, state, plan } = setup('local all all trust\n');
    const reader: Queryable = { query: async () => ({ rows: [{ oid: String(role.oid), rolcanlogin: true }] as never[] }) };
    const denied = Object.assign(new Error('permission denied to alter role'), { code: '42501' });
    const exec = new Scripted(() => denied);
    const report = await apply({ plan, state, exec, reader, params, operator: who, hbaServerLock });
    expect(report.steps.map((s) => [s.action, s.status])).toEqual([
      ['contain', 'failed'],
      ['hba_reject', 'skipped'],
    ]);
    expect(report.steps[0]!.detail).toBe('nothing was committed: permission denied to alter role [SQLSTATE 42501]');
    expect(readFileSync(file, 'utf8')).toBe('local all all trust\n');
    expect(report.exitCode).toBe(2);
  });
});
