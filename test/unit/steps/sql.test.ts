// The `sql` step kind: its fields (template problems as zod issues on the field's path), its plan
// (one step per role and database, expanded statements, skips with their reasons), its apply
// through the executor (the dry run records the same text), its inverse for restore, and the
// statements in the record and the audit log.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { OperatorFacts, Queryable, RoleInfo } from '../../../src/checks/types.js';
import { resolveConnParams } from '../../../src/pg/conninfo.js';
import { DryRunExecutor, loggedSession, type Executor, type Recorded, type ResultSet } from '../../../src/playbook/executor.js';
import { STANDBY_DDL, type Plan, type PlanState, type PlanStep } from '../../../src/playbook/model.js';
import { checkSource, type RestoreSource } from '../../../src/playbook/restore-source.js';
import { Run } from '../../../src/playbook/run.js';
import { ENABLED_EVENT_TRIGGERS, EVENT_TRIGGERS_OFF, type Statement } from '../../../src/playbook/sql.js';
import type { Draft, PlanContext, RestoreContext } from '../../../src/playbook/steps/kind.js';
import { ALL_DATABASES_SQL, sqlStep, type SqlPlaybookStep } from '../../../src/playbook/steps/sql.js';
import { auditEntries } from '../../../src/record/cutoff-audit.js';
import type { CutoffReport, ReportStep } from '../../../src/record/cutoff-report.js';
import { stepOutcome } from '../../../src/record/cutoff-run.js';
import type { CutoffRecordFile } from '../../../src/record/journal.js';
import { recordSections } from '../../../src/record/sections.js';
import { roleInfo as fixtureRole } from './fixtures.js';

// the shared fixture takes (name, oid); these tests were written (oid, name)
const roleInfo = (oid: number, name: string): RoleInfo => fixtureRole(name, oid);
const HOSTILE = `x'; DROP TABLE t; --"`;
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
const params = resolveConnParams({ dsn: 'postgresql://postgres@db.example:5432/maindb' }, {});

function state(over: Partial<PlanState> = {}, standby = false): PlanState {
  return {
    server: { version: 'PostgreSQL 16.4', versionNum: 160004, major: 16, inRecovery: standby, hbaFile: null, dataDirectory: null },
    targets: [roleInfo(16500, 'mallory'), roleInfo(16501, HOSTILE)],
    prepared: [],
    subscriptions: [],
    ownedDatabases: [
      { role: 'mallory', databases: ['app', 'reports'], shared: false },
      { role: HOSTILE, databases: [], shared: true },
    ],
    hba: { file: null, skip: 'no file', perRole: {}, present: [] },
    adminOf: [],
    administered: [],
    ...over,
  };
}

/** The step as the schema gives it (defaults filled in). */
function step(fields: Record<string, unknown>): SqlPlaybookStep {
  return z
    .strictObject({ action: z.literal('sql'), description: z.string().optional(), ...sqlStep.fields(z) })
    .parse({ action: 'sql', ...fields });
}

function plan(s: SqlPlaybookStep, st: PlanState = state()): Draft[] {
  const out: Draft[] = [];
  const ctx: PlanContext = {
    playbook: 'mine',
    state: st,
    operator,
    params,
    input: { roles: st.targets.map((t) => t.name) },
    options: {
      rotatePassword: false,
      stripPrivileges: true,
      settle: { timeoutS: 10, hiddenGraceMs: 250, intervalMs: 20 },
      reassignTo: null,
      hbaFile: null,
      includeCreated: false,
    },
    targets: st.targets,
    standby: st.server.inRecovery,
    add: (d) => out.push(d),
    warn: () => undefined,
    expose: () => undefined,
  };
  sqlStep.plan(ctx, s);
  return out;
}

const REVOKE = 'REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {role}';
const GRANT = 'GRANT SELECT ON ALL TABLES IN SCHEMA app TO {role}';

describe('sql step fields', () => {
  const shape = z.strictObject(sqlStep.fields(z));

  it('defaults: on primary, the database connected to, no inverse', () => {
    expect(shape.parse({ statements: [REVOKE] })).toEqual({ statements: [REVOKE], on: 'primary' });
  });

  it('a template problem is an issue on the statement it is in', () => {
    const r = shape.safeParse({ statements: [REVOKE, "COMMENT ON ROLE x IS '{role}'"], inverse: ['GRANT x TO app_{role}'] });
    expect(r.success).toBe(false);
    const issues = r.error!.issues.map((i) => ({ path: i.path, message: i.message }));
    expect(issues).toEqual([
      { path: ['statements', 1], message: expect.stringMatching(/^\{role\} inside a string literal/) },
      { path: ['inverse', 0], message: expect.stringMatching(/^\{role\} at character 16 is glued to "_"/) },
    ]);
  });

  it.each([
    [{ statements: [] }, ['statements'], /at least one statement/],
    [{ statements: [REVOKE], inverse: [] }, ['inverse'], /at least one statement/],
    [{ statements: [REVOKE], on: 'standby' }, ['on'], /primary|every_node/],
    [{ statements: [REVOKE], database: '' }, ['database'], /a database name/],
    [{ statements: [REVOKE], database: 'x'.repeat(64) }, ['database'], /1 to 63 bytes/],
    [{ statements: [REVOKE], database: 'a\0b' }, ['database'], /a database name/],
    [{ statements: 'REVOKE ...' }, ['statements'], /array/],
  ])('%j is refused at %j', (input, path, message) => {
    const r = shape.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(path);
    expect(r.error!.issues[0]!.message).toMatch(message);
  });
});

describe('sql step plan', () => {
  it('one step per role in the database connected to: expanded statements and inverse, the description as reason', () => {
    const steps = plan(step({ description: 'take the table privileges', statements: [REVOKE, 'ANALYZE app.t'], inverse: [GRANT] }));
    expect(steps).toEqual([
      {
        action: 'sql',
        database: 'maindb',
        role: 'mallory',
        sql: ['REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"', 'ANALYZE app.t'],
        inverse: ['GRANT SELECT ON ALL TABLES IN SCHEMA app TO "mallory"'],
        reason: 'take the table privileges',
      },
      {
        action: 'sql',
        database: 'maindb',
        role: HOSTILE,
        sql: [`REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "x'; DROP TABLE t; --"""`, 'ANALYZE app.t'],
        inverse: [`GRANT SELECT ON ALL TABLES IN SCHEMA app TO "x'; DROP TABLE t; --"""`],
        reason: 'take the table privileges',
      },
    ]);
  });

  it('a statement without {role} still runs once per role; without a description the reason says what it is', () => {
    const steps = plan(step({ statements: ['ANALYZE app.t'] }));
    expect(steps.map((s) => [s.role, s.sql, s.reason])).toEqual([
      ['mallory', ['ANALYZE app.t'], "the playbook's own statements"],
      [HOSTILE, ['ANALYZE app.t'], "the playbook's own statements"],
    ]);
    expect(steps.every((s) => !('inverse' in s))).toBe(true);
  });

  it('database: a name', () => {
    expect(plan(step({ statements: [REVOKE], database: 'app' })).map((s) => [s.role, s.database])).toEqual([
      ['mallory', 'app'],
      [HOSTILE, 'app'],
    ]);
  });

  it("database: each: every database holding the role's objects; none: one skipped step saying so", () => {
    const steps = plan(step({ statements: [REVOKE], database: 'each' }));
    expect(steps.map((s) => [s.role, s.database, s.skip ?? null, s.sql.length])).toEqual([
      ['mallory', 'app', null, 1],
      ['mallory', 'reports', null, 1],
      [
        HOSTILE,
        null,
        expect.stringMatching(/^the role owns no object and holds no privilege in any database \(pg_shdepend lists only cluster-wide/),
        0,
      ],
    ]);
    const none = plan(step({ statements: [REVOKE], database: 'each' }), state({ ownedDatabases: [] }));
    expect(none.map((s) => s.skip)).toEqual([
      'the role owns no object and holds no privilege in any database (pg_shdepend)',
      'the role owns no object and holds no privilege in any database (pg_shdepend)',
    ]);
  });

  it('database: all: every database collect read; collect reads them only for `all`', async () => {
    const queries: string[] = [];
    const q: Queryable = {
      query: (async (sql: string) => {
        queries.push(sql);
        return { rows: [{ datname: 'app' }, { datname: 'postgres' }] };
      }) as Queryable['query'],
    };
    const st = state();
    await sqlStep.collect(q, st, step({ statements: [REVOKE], database: 'each' }));
    expect(st.databases).toBeUndefined();
    await sqlStep.collect(q, st, step({ statements: [REVOKE], database: 'all' }));
    await sqlStep.collect(q, st, step({ statements: [GRANT], database: 'all' }));
    expect(queries).toEqual([ALL_DATABASES_SQL]);
    expect(ALL_DATABASES_SQL).toMatch(/datallowconn AND NOT datistemplate/);
    expect(st.databases).toEqual(['app', 'postgres']);
    expect(plan(step({ statements: [REVOKE], database: 'all' }), st).map((s) => [s.role, s.database])).toEqual([
      ['mallory', 'app'],
      ['mallory', 'postgres'],
      [HOSTILE, 'app'],
      [HOSTILE, 'postgres'],
    ]);
  });

  it('on a standby: skipped as DDL is (it comes by replay), unless on: every_node', () => {
    const standby = state({}, true);
    const skipped = plan(step({ statements: [REVOKE] }), standby);
    expect(skipped.map((s) => [s.role, s.database, s.sql, s.skip])).toEqual([
      ['mallory', null, [], STANDBY_DDL],
      [HOSTILE, null, [], STANDBY_DDL],
    ]);
    expect(STANDBY_DDL).toBe('standby: read-only; this runs on the primary and reaches this node by replay');
    const every = plan(step({ statements: ['SELECT pg_catalog.pg_terminate_backend(1)'], on: 'every_node' }), standby);
    expect(every.map((s) => [s.role, s.database, s.skip ?? null])).toEqual([
      ['mallory', 'maindb', null],
      [HOSTILE, 'maindb', null],
    ]);
    // on a primary, every_node and primary plan alike
    expect(plan(step({ statements: [REVOKE], on: 'every_node' }))).toEqual(plan(step({ statements: [REVOKE] })));
  });

  it('must come after contain; repeatable', () => {
    expect(sqlStep.order([{ action: 'sql' }, { action: 'contain' }], 0)).toBe('"sql" must come after "contain"');
    expect(sqlStep.order([{ action: 'contain' }, { action: 'sql' }], 1)).toBeNull();
    expect(sqlStep.repeatable).toBe(true);
  });
});

class Scripted implements Executor {
  readonly dryRun = false;
  readonly log: Recorded[] = [];
  constructor(private readonly fail?: (sql: string) => Error | null) {}
  async run(step: PlanStep, stmt: Statement | string): Promise<ResultSet[]> {
    const sql = typeof stmt === 'string' ? stmt : stmt.display;
    this.log.push({ step: step.index, action: step.action, database: step.database, sql });
    const e = this.fail?.(sql);
    if (e) throw e;
    return [{ command: 'REVOKE', rowCount: null, rows: [] }];
  }
  async isolated(step: PlanStep, database: string) {
    return loggedSession(this, step, database);
  }
  async writeFile(): Promise<null> {
    return null;
  }
  async restoreFile() {}
  async signalBackends() {
    return [];
  }
  async close() {}
}

function reportStep(d: Draft, index = 3): ReportStep {
  return {
    ...d,
    index,
    node: 'db.example:5432',
    skip: null,
    status: 'planned',
    executed: [],
    startedAt: null,
    durationMs: null,
    detail: null,
  };
}

function runWith(exec: Executor, st: PlanState = state(), superuser = true): Run {
  const p: Plan = {
    schemaVersion: 1,
    playbook: { name: 'mine', file: 'mine.yaml', reason: 'compromise', description: null },
    node: 'db.example:5432',
    createdAt: new Date(0).toISOString(),
    server: { version: st.server.version, major: st.server.major, inRecovery: st.server.inRecovery },
    operator,
    roles: [],
    options: {
      rotatePassword: false,
      stripPrivileges: true,
      settle: { timeoutS: 10, hiddenGraceMs: 250, intervalMs: 20 },
      reassignTo: null,
      hbaFile: null,
      includeCreated: false,
    },
    steps: [],
    warnings: [],
    exposure: [],
  };
  return new Run({
    plan: p,
    state: st,
    exec,
    reader: exec as unknown as Queryable,
    params,
    operator: { user: 'postgres', osUser: 'root', host: 'h', superuser },
  });
}

/** Scripted, with a session of its own per isolated() call: what was set up on it, and whether it was closed. */
class Isolating extends Scripted {
  readonly sessions: { step: number; database: string; setup: string[]; closed: boolean }[] = [];
  constructor(
    private readonly triggers: Record<string, unknown>[] = [],
    fail?: (sql: string) => Error | null,
  ) {
    super(fail);
  }
  override async isolated(step: PlanStep, database: string) {
    const s = { step: step.index, database, setup: [] as string[], closed: false };
    this.sessions.push(s);
    const setup = async (sql: string): Promise<ResultSet[]> => {
      s.setup.push(sql);
      return sql === ENABLED_EVENT_TRIGGERS ? [{ command: 'SELECT', rowCount: this.triggers.length, rows: this.triggers }] : [];
    };
    return { ...loggedSession(this, step, database, setup), close: async () => void (s.closed = true) };
  }
}

describe('sql step apply', () => {
  const [planned] = plan(step({ statements: [REVOKE, 'ANALYZE app.t'], database: 'app' }));

  it('the dry run records exactly the statements a real run runs, in the step database, and changes nothing', async () => {
    const dry = new DryRunExecutor();
    const dryRun = runWith(dry);
    expect(await sqlStep.apply(dryRun, reportStep(planned!))).toBe('would run 2 statement(s) in app');
    expect(dryRun.changed).toBe(false);
    const real = new Scripted();
    const realRun = runWith(real);
    expect(await sqlStep.apply(realRun, reportStep(planned!))).toBe('ran 2 statement(s) in app');
    expect(realRun.changed).toBe(true);
    expect(real.log).toEqual(dry.log);
    expect(real.log).toEqual([
      { step: 3, action: 'sql', database: 'app', sql: 'REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"' },
      { step: 3, action: 'sql', database: 'app', sql: 'ANALYZE app.t' },
    ]);
  });

  it('a failing first statement is the error as it is, nothing changed; a later one says the earlier ones committed', async () => {
    const denied = () => Object.assign(new Error('permission denied for schema app'), { code: '42501' });
    const first = runWith(new Scripted((sql) => (sql.startsWith('REVOKE') ? denied() : null)));
    await expect(sqlStep.apply(first, reportStep(planned!))).rejects.toMatchObject({
      message: 'permission denied for schema app',
      code: '42501',
    });
    expect(first.changed).toBe(false);
    const second = runWith(new Scripted((sql) => (sql.startsWith('ANALYZE') ? denied() : null)));
    await expect(sqlStep.apply(second, reportStep(planned!))).rejects.toMatchObject({
      message: 'statement 2 of 2 failed (the 1 before it ran and committed): permission denied for schema app',
      code: '42501',
    });
    expect(second.changed).toBe(true);
  });

  it("runs on a session of its own in the step's database, closed when the step ends, failed or not", async () => {
    const exec = new Isolating();
    await sqlStep.apply(runWith(exec), reportStep(planned!));
    const failing = new Isolating([], (sql) => (sql.startsWith('ANALYZE') ? new Error('no') : null));
    await expect(sqlStep.apply(runWith(failing), reportStep(planned!))).rejects.toThrow(/statement 2 of 2 failed/);
    for (const e of [exec, failing]) expect(e.sessions.map((x) => [x.step, x.database, x.closed])).toEqual([[3, 'app', true]]);
    expect(exec.log.map((l) => l.sql)).toEqual(['REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"', 'ANALYZE app.t']);
  });

  it('PostgreSQL 17+ as a superuser: event triggers off on that session before any statement, and no look-up', async () => {
    const exec = new Isolating([{ name: 'zz', event: 'ddl_command_start', function: 'public.zz()', owner: 'postgres' }]);
    const run = runWith(exec, state({ server: { ...state().server, major: 17, versionNum: 170000 } }));
    await sqlStep.apply(run, reportStep(planned!));
    expect(exec.sessions[0]!.setup).toEqual([EVENT_TRIGGERS_OFF]);
    expect(EVENT_TRIGGERS_OFF).toBe('SET event_triggers = off');
    expect(run.report.warnings).toEqual([]);
  });

  it('before 17, or not a superuser: the enabled event triggers are named in a warning, once per database', async () => {
    const zz = { name: 'zz_audit', event: 'ddl_command_start', function: 'public.zz_audit()', owner: 'postgres' };
    const [a, b] = plan(step({ statements: [REVOKE], database: 'app' }));
    for (const [major, superuser, why] of [
      [16, true, 'event_triggers, which turns them off, exists from PostgreSQL 17'],
      [18, false, 'only a superuser may turn them off'],
    ] as const) {
      const exec = new Isolating([zz]);
      const run = runWith(exec, state({ server: { ...state().server, major } }), superuser);
      await sqlStep.apply(run, reportStep(a!, 3));
      await sqlStep.apply(run, reportStep(b!, 4));
      expect(exec.sessions.map((x) => x.setup)).toEqual([[ENABLED_EVENT_TRIGGERS], [ENABLED_EVENT_TRIGGERS]]);
      expect(run.report.warnings).toEqual([
        `database "app" has enabled event trigger(s) "zz_audit" (ddl_command_start, public.zz_audit(), owner "postgres"): they run with the operator's privileges on the DDL of the playbook's sql statements there (${why}); review what they do`,
      ]);
    }
    expect(ENABLED_EVENT_TRIGGERS).toMatch(/FROM pg_event_trigger WHERE evtenabled <> 'D'/);
    const none = runWith(new Isolating([]));
    await sqlStep.apply(none, reportStep(a!));
    expect(none.report.warnings).toEqual([]);
  });

  it('an interrupt between statements stops the step', async () => {
    const exec = new Scripted();
    const run = runWith(exec);
    const origRun = exec.run.bind(exec);
    exec.run = async (s, stmt) => {
      const out = await origRun(s, stmt);
      run.interrupt.trigger('SIGTERM');
      return out;
    };
    await expect(sqlStep.apply(run, reportStep(planned!))).rejects.toThrow();
    expect(exec.log).toHaveLength(1);
  });
});

function source(steps: Record<string, unknown>[]): RestoreSource {
  return checkSource(
    {
      schemaVersion: 1,
      dryRun: false,
      roles: [
        {
          name: 'mallory',
          oid: 16500,
          before: { canLogin: true, superuser: false, createRole: false, connectionLimit: -1, validUntil: null },
        },
      ],
      hba: null,
      steps: steps.map((s) => ({ detail: null, sql: [], ...s })),
    },
    'r.json',
  );
}

function restoreCtx(report: RestoreSource, unbacked = false): RestoreContext {
  return { report, role: 'mallory', entry: report.roles[0]!, hbaContent: null, standby: false, stripped: false, unbacked };
}

describe('sql step inverse', () => {
  const steps = [
    { index: 0, action: 'contain', status: 'done', role: null, database: null },
    {
      index: 1,
      action: 'sql',
      status: 'done',
      role: 'mallory',
      database: 'app',
      inverse: ['GRANT a TO "mallory"', 'GRANT b TO "mallory"'],
    },
    { index: 2, action: 'sql', status: 'done', role: 'other', database: 'app', inverse: ['GRANT a TO "other"'] },
    { index: 3, action: 'sql', status: 'failed', role: 'mallory', database: 'app', inverse: ['GRANT never TO "mallory"'] },
    { index: 4, action: 'sql', status: 'done', role: 'mallory', database: 'reports', inverse: ['GRANT c TO "mallory"'] },
    { index: 5, action: 'sql', status: 'done', role: 'mallory', database: 'app' },
    { index: 6, action: 'sql', status: 'skipped', role: 'mallory', database: null, inverse: ['GRANT skipped TO "mallory"'] },
  ];

  it("the role's done steps, latest first, each statement in its step's database; a step without inverse is named", () => {
    expect(sqlStep.inverse(restoreCtx(source(steps)))).toEqual({
      statements: [
        { database: 'reports', sql: 'GRANT c TO "mallory"', step: 4 },
        { database: 'app', sql: 'GRANT a TO "mallory"', step: 1 },
        { database: 'app', sql: 'GRANT b TO "mallory"', step: 1 },
      ],
      notes: ['the sql step at index 5 (in "app") has no inverse: what it did stays done'],
    });
  });

  it('from a report no record backs: nothing to run, a note listing the statements to run by hand', () => {
    const part = sqlStep.inverse(restoreCtx(source(steps), true));
    expect(part.statements).toEqual([]);
    expect(part.notes).toHaveLength(2);
    expect(part.notes![1]).toBe(
      'no record in the state directory backs this report, and restore runs no statement taken from a report alone; the inverse of its sql steps, to run by hand after review: in "reports": GRANT c TO "mallory"; in "app": GRANT a TO "mallory"; in "app": GRANT b TO "mallory"',
    );
  });

  it('a step that did not finish after some statements may have committed: a note listing its inverse, never run', () => {
    const part = sqlStep.inverse(
      restoreCtx(
        source([
          { index: 0, action: 'contain', status: 'done' },
          ...[
            ['failed', 'statement 2 of 2 failed (the 1 before it ran and committed): relation "app.missing" does not exist'],
            ['failed', 'interrupted (SIGTERM) before this step finished'],
            ['unknown', null],
            ['failed', 'permission denied for schema app [SQLSTATE 42501]'],
          ].map(([status, detail], i) => ({
            index: i + 1,
            action: 'sql',
            status,
            detail,
            role: 'mallory',
            database: 'app',
            inverse: [`GRANT x${i + 1} TO "mallory"`],
          })),
          {
            index: 5,
            action: 'sql',
            status: 'failed',
            detail: 'statement 3 of 3 failed (the 2 before it ran and committed): x',
            role: 'mallory',
            database: null,
          },
          { index: 6, action: 'sql', status: 'unknown', role: 'other', database: 'app', inverse: ['GRANT y TO "other"'] },
        ]),
      ),
    );
    expect(part).toEqual({
      statements: [],
      notes: [
        'the sql step at index 1 (in "app") failed after 1 of its statements ran and committed; restore runs no inverse of a step that did not finish; review and run by hand what applies of: in "app": GRANT x1 TO "mallory"',
        'the sql step at index 2 (in "app") was interrupted: some of its statements may have run and committed; restore runs no inverse of a step that did not finish; review and run by hand what applies of: in "app": GRANT x2 TO "mallory"',
        'the sql step at index 3 (in "app") did not record how it ended (the run was cut short): some of its statements may have run and committed; restore runs no inverse of a step that did not finish; review and run by hand what applies of: in "app": GRANT x3 TO "mallory"',
        'the sql step at index 5 failed after 2 of its statements ran and committed; it has no inverse: what it did stays done',
      ],
    });
  });

  it('a report without sql steps (or of an older pgrevoke, without index and role) adds nothing', () => {
    expect(sqlStep.inverse(restoreCtx(source([{ action: 'contain', status: 'done' }])))).toEqual({ statements: [], notes: [] });
  });

  it('restore refuses an inverse that is not a list of strings', () => {
    expect(() => source([{ action: 'sql', status: 'done', inverse: 'DROP TABLE t' }])).toThrow(/steps\[0\]\.inverse/);
    expect(() => source([{ action: 'sql', status: 'done', role: 7 }])).toThrow(/steps\[0\]\.role/);
  });
});

describe('the record and the audit log carry the statements', () => {
  const [planned] = plan(step({ statements: [REVOKE], database: 'app', inverse: [GRANT] }));
  const done: ReportStep = {
    ...reportStep(planned!),
    status: 'done',
    executed: ['REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"'],
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 3,
    detail: 'ran 1 statement(s) in app',
  };

  it('the step line of the record: what ran, in which database, for which role', () => {
    expect(stepOutcome(done)).toMatchObject({
      action: 'sql',
      status: 'done',
      database: 'app',
      role: 'mallory',
      executed: ['REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"'],
    });
  });

  it('the audit line of a sql step has its statements; other steps have none', () => {
    const report = {
      node: 'db.example:5432',
      roles: [{ name: 'mallory' }],
      playbook: { name: 'mine', file: 'mine.yaml', reason: 'compromise', description: null },
      operator: { user: 'postgres', osUser: 'root', host: 'h', superuser: true },
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: null,
      steps: [{ ...done, index: 1, action: 'contain', role: null, executed: ['ALTER ROLE ...'] }, done],
    } as unknown as CutoffReport;
    const lines = auditEntries(report);
    expect(lines).toHaveLength(2);
    expect(lines[0]).not.toHaveProperty('statements');
    expect(lines[1]).toMatchObject({
      action: 'sql',
      target: 'mallory',
      result: 'done',
      detail: 'ran 1 statement(s) in app',
      statements: ['REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"'],
    });
  });
});

describe('a record cut short (no end line) keeps what restore needs of a sql step', () => {
  it("the report rebuilt from the plan has each step's index, role, database and inverse; the outcome says done", () => {
    const planned = plan(
      step({ statements: [REVOKE], database: 'each', inverse: [GRANT] }),
      state({ targets: [roleInfo(16500, 'mallory')] }),
    );
    const steps: PlanStep[] = planned.map((d, i) => ({ ...d, index: i + 1, node: 'db.example:5432', skip: d.skip ?? null }));
    const p = { ...runWith(new DryRunExecutor()).plan, roles: [] as Plan['roles'], steps };
    p.roles = [
      {
        name: 'mallory',
        oid: 16500,
        before: { canLogin: true, superuser: false, createRole: false, connectionLimit: -1, validUntil: null },
        restoreSql: 'ALTER ROLE "mallory" LOGIN',
      },
    ];
    const rec: CutoffRecordFile = {
      file: '/state/records/r.jsonl',
      begin: {
        type: 'begin',
        schemaVersion: 1,
        startedAt: '2026-01-01T00:00:00.000Z',
        playbook: 'mine',
        operator: { osUser: 'root', host: 'h' },
        reasonText: null,
        nodes: [{ node: 'db.example:5432', systemIdentifier: null, standby: false, plan: p }],
      },
      // the run died after the first sql step (app) was recorded done; how far reports got is not recorded
      steps: [{ node: 'db.example:5432', step: { ...stepOutcome({ ...reportStep(planned[0]!, 1), status: 'done' }) } }],
      end: null,
      restored: [],
    };
    const { sections } = recordSections(rec);
    expect(sections).toHaveLength(1);
    const part = sqlStep.inverse(restoreCtx(sections[0]!.source));
    expect(part).toEqual({
      statements: [{ database: 'app', sql: 'GRANT SELECT ON ALL TABLES IN SCHEMA app TO "mallory"', step: 1 }],
      // it may have been running when the run died: listed, never run
      notes: [
        'the sql step at index 2 (in "reports") did not record how it ended (the run was cut short): some of its statements may have run and committed; restore runs no inverse of a step that did not finish; review and run by hand what applies of: in "reports": GRANT SELECT ON ALL TABLES IN SCHEMA app TO "mallory"',
      ],
    });
  });
});
