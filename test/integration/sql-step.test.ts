// The `sql` step kind end to end, via the CLI on real servers: a playbook's own statements are
// shown by the dry run exactly as apply runs them, really run (the privilege is gone), carried by
// the record and the audit log, and undone by restore through their inverse; `{role}` is a quoted
// identifier for a hostile name; database: each / all; on: primary / every_node on a standby; an
// invalid step is exit 2 naming file, line and field.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ident } from '../../src/pg/quote.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, startStandby, waitForReplay, type TestCluster } from '../helpers/cluster.js';

interface Step {
  index: number;
  action: string;
  node: string;
  database: string | null;
  role: string | null;
  sql: string[];
  inverse?: string[];
  executed: string[];
  status: string;
  skip: string | null;
  reason: string;
  detail: string | null;
}
interface Report {
  steps: Step[];
  record?: string;
  exitCode: number;
}
interface RestoreDoc {
  steps: { action: string; sql: string | null; database?: string | null; status: string; detail: string | null }[];
  notes: string[];
  exitCode: number;
}

/** Quotes, spaces, a semicolon and a comment marker: a name that would break out of a string. */
const HOSTILE = `Ma'l "ops"; --x`;
const PRELUDE = `reason: compromise
steps:
  - action: snapshot
  - action: contain
  - action: settle
`;

const sqlSteps = (r: Report) => r.steps.filter((s) => s.action === 'sql');
const byPlace = (steps: Step[]) => [...steps].sort((a, b) => `${a.role}/${a.database}`.localeCompare(`${b.role}/${b.database}`));

describe.each(MAJORS)('the sql step on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-sql-step-'));
  const env = { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
  const cli = (args: string[]) => runCli([...args, '--dsn', cl.dsn()], env, { timeoutMs: 60_000 });
  const playbook = (name: string, text: string) => {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, text);
    return file;
  };
  const priv = async (role: string, db: string, table: string, what: string) => {
    const c = db === 'postgres' ? cl.admin : await cl.connectAs('postgres', cl.password, db);
    return (await c.query<{ ok: boolean }>('SELECT has_table_privilege($1, $2, $3) AS ok', [role, table, what])).rows[0]!.ok;
  };

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE ${ident(HOSTILE)} LOGIN PASSWORD 'pw-h'`);
    await cl.sql(`CREATE DATABASE app2`);
    for (const db of ['postgres', 'app2']) {
      const c = db === 'postgres' ? cl.admin : await cl.connectAs('postgres', cl.password, db);
      await c.query(`CREATE SCHEMA app; CREATE TABLE app.t1 (id int); CREATE TABLE app.t2 (id int)`);
      await c.query(`GRANT USAGE ON SCHEMA app TO ${ident(HOSTILE)}; GRANT ALL ON ALL TABLES IN SCHEMA app TO ${ident(HOSTILE)}`);
    }
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('the shipped example (database: each) with a hostile name: dry run = executed, privileges gone, record and audit log carry it, restore grants SELECT back', async () => {
    const dry = jsonDoc<Report>(await cli(['cutoff', HOSTILE, '--playbook', 'revoke-app-privileges', '--dry-run', '--json']));
    const revoke = `REVOKE ALL ON ALL TABLES IN SCHEMA app FROM ${ident(HOSTILE)}`;
    expect(revoke).toBe(`REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "Ma'l ""ops""; --x"`);
    const planned = byPlace(sqlSteps(dry));
    expect(planned.map((s) => [s.role, s.database, s.sql, s.inverse, s.status, s.executed, s.reason])).toEqual(
      ['app2', 'postgres'].map((db) => [
        HOSTILE,
        db,
        [revoke],
        [`GRANT SELECT ON ALL TABLES IN SCHEMA app TO ${ident(HOSTILE)}`],
        'planned',
        [revoke],
        "take the role's table privileges in schema app",
      ]),
    );
    expect(await priv(HOSTILE, 'app2', 'app.t1', 'SELECT')).toBe(true);

    const audit = path.join(dir, 'audit.jsonl');
    const reportFile = path.join(dir, 'example.json');
    const cut = await cli([
      'cutoff',
      HOSTILE,
      '--playbook',
      'revoke-app-privileges',
      '--yes',
      '--json',
      '--report',
      reportFile,
      '--audit-log',
      audit,
    ]);
    const done = jsonDoc<Report>(cut);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    const ran = byPlace(sqlSteps(done));
    expect(ran.map((s) => [s.database, s.status, s.detail])).toEqual([
      ['app2', 'done', 'ran 1 statement(s) in app2'],
      ['postgres', 'done', 'ran 1 statement(s) in postgres'],
    ]);
    // what the dry run showed is what ran
    expect(ran.map((s) => [s.database, s.executed])).toEqual(planned.map((s) => [s.database, s.executed]));
    for (const db of ['postgres', 'app2'])
      for (const t of ['app.t1', 'app.t2']) for (const p of ['SELECT', 'INSERT']) expect(await priv(HOSTILE, db, t, p)).toBe(false);

    // the record's step lines and the audit log carry the statements
    const lines = readFileSync(done.record!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; step?: { action: string; database: string; executed: string[] } });
    const recorded = lines.filter((l) => l.type === 'step' && l.step!.action === 'sql').map((l) => [l.step!.database, l.step!.executed]);
    expect(recorded.sort()).toEqual([
      ['app2', [revoke]],
      ['postgres', [revoke]],
    ]);
    const audited = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; target: string; statements?: string[] })
      .filter((e) => e.action === 'sql');
    expect(audited).toHaveLength(2);
    expect(audited.every((e) => e.target === HOSTILE && JSON.stringify(e.statements) === JSON.stringify([revoke]))).toBe(true);

    // restore --dry-run lists the inverse, in each database, after alter_role; nothing changes
    const grant = `GRANT SELECT ON ALL TABLES IN SCHEMA app TO ${ident(HOSTILE)}`;
    const plan = jsonDoc<RestoreDoc>(await cli(['restore', HOSTILE, '--from', reportFile, '--dry-run', '--json']));
    expect(plan.steps.map((s) => [s.action, s.sql, s.database ?? null, s.status])).toEqual([
      ['alter_role', expect.stringContaining('ALTER ROLE'), null, 'planned'],
      ...[...ran].sort((a, b) => b.index - a.index).map((s) => ['sql', grant, s.database, 'planned']),
      // the pg_hba.conf block comes out after them
      ['hba_remove', null, null, 'planned'],
      ['reload', 'SELECT pg_reload_conf()', null, 'planned'],
    ]);
    expect(await priv(HOSTILE, 'app2', 'app.t1', 'SELECT')).toBe(false);

    // a copy of the report without its record link: restore runs none of its text, and lists it
    const doc = JSON.parse(readFileSync(reportFile, 'utf8')) as Record<string, unknown>;
    delete doc.record;
    const copy = path.join(dir, 'unbacked.json');
    writeFileSync(copy, JSON.stringify(doc));
    const unbacked = jsonDoc<RestoreDoc>(await cli(['restore', HOSTILE, '--from', copy, '--dry-run', '--json']));
    expect(unbacked.steps.filter((s) => s.action === 'sql')).toEqual([]);
    expect(unbacked.notes.join('\n')).toContain(`to run by hand after review: in "`);
    expect(unbacked.notes.join('\n')).toContain(grant);

    const r = await cli(['restore', HOSTILE, '--from', reportFile, '--yes', '--json']);
    const restored = jsonDoc<RestoreDoc>(r);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(restored.steps.filter((s) => s.action === 'sql').map((s) => [s.database, s.status])).toEqual(
      plan.steps.filter((s) => s.action === 'sql').map((s) => [s.database, 'done']),
    );
    for (const db of ['postgres', 'app2'])
      for (const t of ['app.t1', 'app.t2']) {
        expect(await priv(HOSTILE, db, t, 'SELECT')).toBe(true);
        expect(await priv(HOSTILE, db, t, 'INSERT')).toBe(false);
      }
    const c = await cl.connectAs(HOSTILE, 'pw-h', 'app2');
    expect((await c.query('SELECT count(*)::int AS n FROM app.t1')).rows[0].n).toBe(0);
  });

  it('database: all (templates and closed databases left out), each with nothing held, a statement without {role}; a failed inverse is exit 3', async () => {
    await cl.sql(`CREATE ROLE keen LOGIN; CREATE ROLE idle LOGIN`);
    await cl.sql(`CREATE DATABASE closed ALLOW_CONNECTIONS false`);
    for (const db of ['postgres', 'app2']) {
      const c = db === 'postgres' ? cl.admin : await cl.connectAs('postgres', cl.password, db);
      // PostgreSQL 14 grants CREATE on public to PUBLIC: only keen's own grant is to count
      await c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CREATE ON SCHEMA public TO keen`);
    }
    const file = playbook(
      'all',
      `name: all-dbs
${PRELUDE}  - action: sql
    statements: ['REVOKE CREATE ON SCHEMA public FROM {role};', 'SELECT 1 AS no_role_here']
    database: all
    inverse: ['GRANT CREATE ON SCHEMA public TO {role}']
  - action: sql
    description: held objects
    statements: ['REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}']
    database: each
  - action: verify
`,
    );
    const dry = jsonDoc<Report>(await cli(['cutoff', 'keen', 'idle', '--playbook', file, '--dry-run', '--json']));
    const place = (s: Step) => [s.role, s.database, s.skip];
    const first = sqlSteps(dry).filter((s) => s.reason === "the playbook's own statements");
    expect(byPlace(first).map(place)).toEqual([
      ['idle', 'app2', null],
      ['idle', 'postgres', null],
      ['keen', 'app2', null],
      ['keen', 'postgres', null],
    ]);
    expect(first.find((s) => s.role === 'idle')!.sql).toEqual(['REVOKE CREATE ON SCHEMA public FROM "idle";', 'SELECT 1 AS no_role_here']);
    const each = sqlSteps(dry).filter((s) => s.reason === 'held objects');
    expect(byPlace(each).map(place)).toEqual([
      ['idle', null, 'the role owns no object and holds no privilege in any database (pg_shdepend)'],
      ['keen', 'app2', null],
      ['keen', 'postgres', null],
    ]);

    const reportFile = path.join(dir, 'all.json');
    const cut = await cli(['cutoff', 'keen', 'idle', '--playbook', file, '--yes', '--json', '--report', reportFile]);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    const done = jsonDoc<Report>(cut);
    expect(byPlace(sqlSteps(done)).map((s) => [s.role, s.database, s.status])).toEqual(
      byPlace(sqlSteps(dry)).map((s) => [s.role, s.database, s.skip ? 'skipped' : 'done']),
    );
    expect(sqlSteps(done).map((s) => s.executed)).toEqual(sqlSteps(dry).map((s) => s.executed));
    const canCreate = async (db: string) => {
      const c = db === 'postgres' ? cl.admin : await cl.connectAs('postgres', cl.password, db);
      return (await c.query<{ ok: boolean }>(`SELECT has_schema_privilege('keen', 'public', 'CREATE') AS ok`)).rows[0]!.ok;
    };
    expect([await canCreate('postgres'), await canCreate('app2')]).toEqual([false, false]);

    // the inverse fails in one database (the schema is gone there): recorded, the others still run, exit 3
    const app2 = await cl.connectAs('postgres', cl.password, 'app2');
    await app2.query('ALTER SCHEMA public RENAME TO gone');
    const r = await cli(['restore', 'keen', '--from', reportFile, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const doc = jsonDoc<RestoreDoc>(r);
    expect(doc.steps.filter((s) => s.action === 'sql').map((s) => [s.database, s.status])).toEqual([
      ['postgres', 'done'],
      ['app2', 'failed'],
    ]);
    expect(doc.steps.find((s) => s.status === 'failed')!.detail).toMatch(/schema "public" does not exist/);
    expect(await canCreate('postgres')).toBe(true);
    await app2.query('ALTER SCHEMA gone RENAME TO public');
  });

  it('a step that failed after some of its statements committed (partial-playbook.yaml): restore lists its inverse in a note to run by hand, and runs none of it', async () => {
    await cl.sql(`CREATE ROLE carol LOGIN`);
    await cl.sql(`GRANT USAGE ON SCHEMA app TO carol; GRANT SELECT, INSERT ON app.t1 TO carol`);
    const file = playbook(
      'partial',
      `name: partial
${PRELUDE}  - action: sql
    description: two statements, the second fails
    statements: ['REVOKE ALL ON app.t1 FROM {role}', 'REVOKE ALL ON app.missing FROM {role}']
    inverse: ['GRANT SELECT, INSERT ON app.t1 TO {role}']
  - action: verify
`,
    );
    const cut = await cli(['cutoff', 'carol', '--playbook', file, '--yes', '--json']);
    expect(cut.code, cut.stdout + cut.stderr).toBe(3);
    const [step] = sqlSteps(jsonDoc<Report>(cut));
    expect([step!.status, step!.detail]).toEqual([
      'failed',
      expect.stringContaining('statement 2 of 2 failed (the 1 before it ran and committed)'),
    ]);
    expect(await priv('carol', 'postgres', 'app.t1', 'SELECT')).toBe(false);
    const note = `the sql step at index ${step!.index} (in "postgres") failed after 1 of its statements ran and committed; restore runs no inverse of a step that did not finish; review and run by hand what applies of: in "postgres": GRANT SELECT, INSERT ON app.t1 TO "carol"`;
    const plan = jsonDoc<RestoreDoc>(await cli(['restore', 'carol', '--dry-run', '--json']));
    expect(plan.steps.filter((s) => s.action === 'sql')).toEqual([]);
    expect(plan.notes).toContain(note);
    const r = await cli(['restore', 'carol', '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(jsonDoc<RestoreDoc>(r).notes).toContain(note);
    expect(await priv('carol', 'postgres', 'app.t1', 'SELECT')).toBe(false);
    expect((await cl.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'carol'`))[0]!.l).toBe(true);
  });

  it('an invalid sql step is exit 2 naming the file, the line and the field; nothing runs', async () => {
    const cases: [string, string, RegExp][] = [
      [`statements: ["COMMENT ON ROLE x IS '{role}'"]`, 'steps[3].statements[0]', /\{role\} inside a string literal at character 23/],
      [`statements: ['GRANT x TO app_{role}']`, 'steps[3].statements[0]', /is glued to "_"/],
      [`statements: ['SELECT 1', 'REVOKE a FROM {role}; GRANT b TO {role}']`, 'steps[3].statements[1]', /more than one statement/],
      [`statements: ['SELECT 1']\n    inverse: ['BEGIN']`, 'steps[3].inverse[0]', /BEGIN here would change the step's session/],
      [`statements: ['']`, 'steps[3].statements[0]', /an empty statement/],
      [`statements: ['SELECT 1']\n    on: standby`, 'steps[3].on', /primary|every_node/],
      [`statements: ['SELECT 1']\n    datbase: each`, 'steps[3].datbase', /unknown field "datbase"/],
    ];
    for (const [fields, field, message] of cases) {
      const file = playbook('bad', `name: bad\n${PRELUDE}  - action: sql\n    ${fields}\n`);
      const lines = readFileSync(file, 'utf8').split('\n');
      const key = field
        .split('.')
        .at(-1)!
        .replace(/\[\d+\]$/, '');
      const line = lines.findIndex((l) => l.trimStart().startsWith(`${key}:`)) + 1;
      const r = await cli(['cutoff', 'x', '--playbook', file, '--dry-run']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`invalid playbook ${file}:${line}: ${field}: `);
      expect(r.stderr).toMatch(message);
    }
    const before = playbook(
      'before',
      `name: before\nreason: compromise\nsteps:\n  - action: sql\n    statements: ['SELECT 1']\n  - action: contain\n`,
    );
    const r = await cli(['cutoff', 'x', '--playbook', before, '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`invalid playbook ${before}:4: steps[0].action: "sql" must come after "contain"`);
  });
});

describe.each(MAJORS)('the sql step over a primary and its standby (PostgreSQL %i)', (major) => {
  let primary: TestCluster;
  let standby: TestCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-sql-standby-'));

  beforeAll(async () => {
    primary = await startCluster(major, { full_page_writes: 'on' });
    await primary.sql(`CREATE ROLE "Stand ""by"" me" LOGIN; CREATE SCHEMA app; CREATE TABLE app.t (id int)`);
    await primary.sql(`GRANT SELECT ON app.t TO "Stand ""by"" me"`);
    standby = await startStandby(primary);
    await waitForReplay(primary, standby);
  }, 120_000);
  afterAll(async () => {
    await standby?.destroyAll();
    await primary?.destroyAll();
  });

  it('on: primary runs on the primary only (skipped on the standby, which gets it by replay); on: every_node runs on both', async () => {
    const file = path.join(dir, 'nodes.yaml');
    writeFileSync(
      file,
      `name: nodes
${PRELUDE}  - action: sql
    statements: ['REVOKE SELECT ON app.t FROM {role}']
  - action: sql
    description: on every node
    statements: ['SELECT pg_catalog.pg_stat_clear_snapshot()']
    on: every_node
`,
    );
    const args = ['cutoff', 'Stand "by" me', '--playbook', file, '--json', '--target', primary.dsn(), '--target', standby.dsn()];
    const cut = await runCli([...args, '--yes'], {}, { timeoutMs: 90_000 });
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    const doc = jsonDoc<{ nodes: { role: string; report: Report }[] }>(cut);
    const on = (role: string) => sqlSteps(doc.nodes.find((n) => n.role === role)!.report);
    expect(on('primary').map((s) => [s.status, s.executed])).toEqual([
      ['done', ['REVOKE SELECT ON app.t FROM "Stand ""by"" me"']],
      ['done', ['SELECT pg_catalog.pg_stat_clear_snapshot()']],
    ]);
    expect(on('standby').map((s) => [s.status, s.detail, s.executed])).toEqual([
      ['skipped', 'standby: read-only; this runs on the primary and reaches this node by replay', []],
      ['done', 'ran 1 statement(s) in postgres', ['SELECT pg_catalog.pg_stat_clear_snapshot()']],
    ]);
    await waitForReplay(primary, standby);
    const [row] = await standby.sql<{ ok: boolean }>(`SELECT has_table_privilege('Stand "by" me', 'app.t', 'SELECT') AS ok`);
    expect(row!.ok).toBe(false);
  });
});
