// A CREATEROLE target that makes fresh LOGIN roles and walks out through them: before the cutoff,
// and mid-incident from a live session while the operator reads the plan. Real servers, the CLI as
// a subprocess (on a pseudo-terminal where the confirmation matters).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attacker } from '../../src/demo/attacker.js';
import { runCli, startCli, startOnTerminal, jsonDoc } from '../helpers/cli.js';
import { canQuery, lockWaiters, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

interface Json {
  [k: string]: unknown;
}

describe.each(MAJORS)('roles the target made, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-created-'));
  const attackers: Attacker[] = [];
  const cli = (args: string[]) => runCli([...args, '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
  const role = async (name: string) =>
    (await cl.sql<{ login: boolean }>(`SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = $1`, [name]))[0]?.login;
  const sessionsOf = async (name: string) =>
    (
      await cl.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
        [name],
      )
    )[0]!.n;
  /** A CREATEROLE target with a live session. */
  const target = async (name: string) => {
    await cl.sql(`CREATE ROLE ${name} LOGIN CREATEROLE PASSWORD 'pw-${name}'`);
    return cl.connectAs(name, `pw-${name}`);
  };
  /** The target's live session creates a LOGIN role; a reconnecting attacker then works through it. */
  const walkOut = async (session: pg.Client, name: string) => {
    await session.query(`CREATE ROLE ${name} LOGIN PASSWORD 'pw-${name}'`);
    const a = new Attacker({ host: '127.0.0.1', port: cl.port, user: name, password: `pw-${name}`, sessions: 2, intervalMs: 20 });
    a.start();
    attackers.push(a);
    await waitFor(async () => (await sessionsOf(name)) === 2, 20_000, `sessions of ${name}`);
    return a;
  };
  /** cutoff on a terminal: the plan is shown and waits at its question while `meanwhile` runs. */
  const cutoffConfirmed = async (args: string[], meanwhile: () => Promise<void>) => {
    const report = path.join(tmp, `${args[0]}-${Date.now()}.json`);
    const t = startOnTerminal(['cutoff', ...args, '--report', report, '--dsn', cl.dsn()], 90_000);
    await waitFor(async () => t.screen().includes('(y/N)'), 30_000, 'the confirmation');
    await meanwhile();
    t.type('y\r');
    const code = await t.exited;
    return { code, screen: t.screen(), report: JSON.parse(readFileSync(report, 'utf8')) as Json };
  };

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
  });

  afterAll(async () => {
    await Promise.all(attackers.map((a) => a.stop()));
    await cl?.destroyAll();
  });

  it('inspect lists the roles the target administers, with the grantor (16+), or says once that it cannot know (before 16)', async () => {
    const s = await target('boss');
    await walkOut(s, 'minion');
    const d = jsonDoc<Json>(await cli(['inspect', 'boss', '--json']));
    const findings = d.findings as Json[];
    if (major >= 16) {
      const f = findings.find((x) => x.id === 'roles.administered')!;
      expect(f, JSON.stringify(findings)).toBeDefined();
      expect(f.exposure).toBe(true);
      expect(f.detail).toContain('minion');
      expect(f.detail).toContain('postgres');
      expect(d.verdict).toBe('exposed');
      expect(d.administeredRoles).toMatchObject({
        recorded: true,
        roles: [{ name: 'minion', via: 'boss', grantor: 'postgres', likelyCreated: true, canLogin: true, sessions: 2 }],
      });
      expect(findings.map((x) => x.id)).not.toContain('roles.created_unknown');
    } else {
      const unknown = findings.filter((x) => x.id === 'roles.created_unknown');
      expect(unknown, JSON.stringify(findings)).toHaveLength(1);
      expect(unknown[0]!.detail).toContain(`PostgreSQL ${major}`);
      expect(findings.map((x) => x.id)).not.toContain('roles.administered');
      expect(d.administeredRoles).toMatchObject({ recorded: false, roles: [] });
    }
  });

  // who created a role is recorded from 16 on: the cutoff cases differ, so each major gets its own
  if (major >= 16) {
    it('cutoff without --include-created: the created role is listed under exposure, exit 1, and left alone', async () => {
      const r = await cli(['cutoff', 'boss', '--yes', '--json']);
      expect(r.code, r.stderr).toBe(1);
      const d = jsonDoc<Json>(r);
      const exposure = (d.exposure as string[]).join('\n');
      expect(exposure).toContain('minion');
      expect(exposure).toContain('--include-created');
      expect(exposure).toContain('roles.administered');
      expect((d.roles as Json[]).map((x) => x.name)).toEqual(['boss']);
      expect(await role('boss')).toBe(false);
      expect(await role('minion')).toBe(true);
      expect(await sessionsOf('minion')).toBe(2);
    });

    it('cutoff --include-created: a role created before is contained with the target', async () => {
      const s = await target('boss2');
      const attacker = await walkOut(s, 'minion2');
      const dry = jsonDoc<Json>(await cli(['cutoff', 'boss2', '--include-created', '--dry-run', '--json']));
      expect((dry.roles as Json[]).map((x) => x.name)).toEqual(['boss2', 'minion2']);
      const r = await cli(['cutoff', 'boss2', '--include-created', '--yes', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const d = jsonDoc<Json>(r);
      expect(d.exposure).toEqual([]);
      expect((d.roles as Json[]).map((x) => [x.name, x.included])).toEqual([
        ['boss2', null],
        ['minion2', { administeredBy: 'boss2', grantor: 'postgres', likelyCreated: true }],
      ]);
      expect((d.terminated as Json[]).map((t) => t.user)).toEqual(expect.arrayContaining(['boss2', 'minion2']));
      expect(await role('minion2')).toBe(false);
      expect(await sessionsOf('minion2')).toBe(0);
      expect(await canQuery(s)).toBe(false);
      const ok = attacker.stats.successes;
      await new Promise((res) => setTimeout(res, 500));
      expect(attacker.stats.successes).toBe(ok);
    });

    it('a role created mid-incident, while the confirmation waits: --include-created contains it too', async () => {
      const s = await target('boss3');
      let attacker: Attacker | undefined;
      const run = await cutoffConfirmed(['boss3', '--include-created'], async () => {
        attacker = await walkOut(s, 'late3');
      });
      expect(run.code, run.screen).toBe(0);
      expect(run.report.exposure).toEqual([]);
      expect((run.report.roles as Json[]).map((x) => x.name)).toEqual(['boss3', 'late3']);
      expect(await role('late3')).toBe(false);
      expect(await sessionsOf('late3')).toBe(0);
      const ok = attacker!.stats.successes;
      await new Promise((res) => setTimeout(res, 500));
      expect(attacker!.stats.successes).toBe(ok);
    });

    it('a role created mid-incident without the flag is found at verification: exposure, exit 1', async () => {
      const s = await target('boss4');
      const run = await cutoffConfirmed(['boss4'], async () => {
        await walkOut(s, 'late4');
      });
      expect(run.code, run.screen).toBe(1);
      const exposure = (run.report.exposure as string[]).join('\n');
      expect(exposure).toContain('roles.administered');
      expect(run.report.verification as Json[]).toEqual([
        expect.objectContaining({
          role: 'boss4',
          findings: expect.arrayContaining([
            expect.objectContaining({ id: 'roles.administered', detail: expect.stringContaining('late4') }),
          ]),
        }),
      ]);
      expect(await role('late4')).toBe(true);
    });

    it('cutoff --yes --include-created: a role the target creates while the run is under way is contained too', async () => {
      await cl.sql(`CREATE ROLE boss5 LOGIN CREATEROLE PASSWORD 'pw-boss5'`);
      await cl.sql(`CREATE ROLE dba5 SUPERUSER LOGIN PASSWORD 'pw-dba5'`);
      // a bystander holds boss5's row, so the run retries NOLOGIN for as long as it likes
      const dba = await cl.connectAs('dba5', 'pw-dba5');
      await dba.query('BEGIN');
      await dba.query('ALTER ROLE boss5 CONNECTION LIMIT 9');
      const run = startCli(['cutoff', 'boss5', '--include-created', '--yes', '--json', '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
      await waitFor(async () => (await lockWaiters(cl, '%NOLOGIN%')) > 0, 20_000, 'the cutoff to wait on the row');
      // meanwhile the target, still able to log in, makes itself a way out
      const s = await cl.connectAs('boss5', 'pw-boss5');
      await s.query(`CREATE ROLE late5 LOGIN PASSWORD 'pw-late5'`);
      await s.end();
      // and the new role holds its own row, against the containment that will come for it too
      const late = await cl.connectAs('late5', 'pw-late5');
      await late.query('BEGIN');
      await late.query(`ALTER ROLE late5 PASSWORD 'pw-late5'`);
      await dba.query('COMMIT');
      const code = await run.exited;
      expect(code, run.stderr()).toBe(0);
      const d = JSON.parse(run.stdout()) as Json;
      expect(d.exposure).toEqual([]);
      expect((d.roles as Json[]).map((x) => [x.name, x.included])).toEqual([
        ['boss5', null],
        ['late5', { administeredBy: 'boss5', grantor: 'postgres', likelyCreated: true }],
      ]);
      expect((d.warnings as string[]).join('\n')).toMatch(/"late5".*during the cutoff/);
      expect(await role('boss5')).toBe(false);
      expect(await role('late5')).toBe(false);
    });

    it("a role that joins during the run gets no sql step of the playbook's, and the report says so", async () => {
      await cl.sql(`CREATE ROLE boss6 LOGIN CREATEROLE PASSWORD 'pw-boss6'`);
      await cl.sql(`CREATE ROLE dba6 SUPERUSER LOGIN PASSWORD 'pw-dba6'`);
      const playbook = path.join(tmp, 'with-sql.yaml');
      writeFileSync(
        playbook,
        'name: with-sql\nreason: compromise\nsteps:\n  - action: contain\n  - action: settle\n' +
          '  - action: sql\n    statements: ["REVOKE ALL ON SCHEMA public FROM {role}"]\n  - action: verify\n',
      );
      const dba = await cl.connectAs('dba6', 'pw-dba6');
      await dba.query('BEGIN');
      await dba.query('ALTER ROLE boss6 CONNECTION LIMIT 9');
      const args = ['cutoff', 'boss6', '--include-created', '--playbook', playbook, '--yes', '--json', '--dsn', cl.dsn()];
      const run = startCli(args, {}, { timeoutMs: 90_000 });
      await waitFor(async () => (await lockWaiters(cl, '%NOLOGIN%')) > 0, 20_000, 'the cutoff to wait on the row');
      const s = await cl.connectAs('boss6', 'pw-boss6');
      await s.query(`CREATE ROLE late6 LOGIN PASSWORD 'pw-late6'`);
      await s.end();
      await dba.query('COMMIT');
      const code = await run.exited;
      expect(code, run.stderr()).toBe(0);
      const d = JSON.parse(run.stdout()) as Json;
      expect((d.roles as Json[]).map((x) => x.name)).toEqual(['boss6', 'late6']);
      expect((d.steps as Json[]).filter((x) => x.action === 'sql').map((x) => [x.role, x.status])).toEqual([['boss6', 'done']]);
      expect((d.warnings as string[]).join('\n')).toMatch(/"late6" joined the cutoff during the run.*sql steps.*not run for it/);
      expect(await role('late6')).toBe(false);
    });
  } else {
    it('cutoff --include-created before 16 warns that created roles cannot be known', async () => {
      const r = await cli(['cutoff', 'boss', '--include-created', '--yes', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const d = jsonDoc<Json>(r);
      expect((d.warnings as string[]).join('\n')).toContain(`PostgreSQL ${major} does not record`);
      expect((d.roles as Json[]).map((x) => x.name)).toEqual(['boss']);
    });
  }
});
