// An attacker who owns the database the operator connects to (or is a superuser) can set what every
// new session there starts with: a search_path that puts its own pg_stat_activity ahead of the
// catalog's, or read-only transactions. pgrevoke's sessions start with their own settings (startup
// parameters beat database and role settings) and must not be fooled or stopped by them.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attacker } from '../../src/demo/attacker.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

describe.each(MAJORS)('cutoff against database-level settings planted by the target, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const attackers: Attacker[] = [];
  const sessionsOf = async (name: string) =>
    (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [name]))[0]!.n;
  const canLogin = async (name: string) =>
    (await cl.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1`, [name]))[0]!.l;
  /** A role owning database `db`, with reconnecting sessions in it. */
  const owner = async (name: string, db: string) => {
    await cl.sql(`CREATE ROLE ${name} LOGIN PASSWORD 'pw-${name}'`);
    await cl.sql(`CREATE DATABASE ${db} OWNER ${name}`);
    return cl.connectAs(name, `pw-${name}`, db);
  };
  const attack = async (name: string, db: string) => {
    const a = new Attacker({
      host: '127.0.0.1',
      port: cl.port,
      user: name,
      password: `pw-${name}`,
      database: db,
      sessions: 3,
      intervalMs: 10,
    });
    a.start();
    attackers.push(a);
    await waitFor(async () => (await sessionsOf(name)) >= 3, 20_000, `sessions of ${name}`);
  };

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
  });

  afterAll(async () => {
    await Promise.all(attackers.map((a) => a.stop()));
    await cl?.destroyAll();
  });

  it("a search_path that shadows pg_stat_activity in the operator's database does not hide the role's sessions", async () => {
    const s = await owner('mal_path', 'app_path');
    await s.query(`CREATE SCHEMA evil`);
    await s.query(
      `CREATE VIEW evil.pg_stat_activity AS SELECT * FROM pg_catalog.pg_stat_activity WHERE usename IS DISTINCT FROM 'mal_path'`,
    );
    await s.query(`GRANT USAGE ON SCHEMA evil TO PUBLIC; GRANT SELECT ON evil.pg_stat_activity TO PUBLIC`);
    await s.query(`ALTER DATABASE app_path SET search_path = evil, pg_catalog`);
    await attack('mal_path', 'app_path');
    const r = await runCli(['cutoff', 'mal_path', '--yes', '--json', '--dsn', cl.dsn('app_path')], {}, { timeoutMs: 60_000 });
    const d = jsonDoc(r);
    expect(r.code, r.stderr).toBe(0);
    expect(await canLogin('mal_path')).toBe(false);
    expect(await sessionsOf('mal_path')).toBe(0);
    expect((d.terminated as unknown[]).length).toBeGreaterThanOrEqual(3);
  });

  it('read-only transactions set on the database do not stop the ALTER', async () => {
    await owner('mal_ro', 'app_ro');
    await cl.sql(`ALTER DATABASE app_ro SET default_transaction_read_only = on`);
    await cl.sql(`ALTER DATABASE app_ro SET statement_timeout = '1ms'`);
    await attack('mal_ro', 'app_ro');
    const r = await runCli(['cutoff', 'mal_ro', '--yes', '--json', '--dsn', cl.dsn('app_ro')], {}, { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(await canLogin('mal_ro')).toBe(false);
    expect(await sessionsOf('mal_ro')).toBe(0);
  });

  it("standard_conforming_strings set off on the database does not change what a playbook's statements mean", async () => {
    // off, a backslash in '...' is an escape: the playbook's 'a\\b' would be written as a, backspace, b
    const s = await owner('mal_scs', 'app_scs');
    await s.query(`CREATE SCHEMA app`);
    await s.end();
    await cl.sql(`ALTER DATABASE app_scs SET standard_conforming_strings = off`);
    const dir = mkdtempSync(path.join(tmpdir(), 'pgrevoke-scs-'));
    const file = path.join(dir, 'scs.yaml');
    writeFileSync(
      file,
      [
        'name: scs',
        'reason: compromise',
        'steps:',
        '  - action: contain',
        '  - action: sql',
        '    database: app_scs',
        '    statements: ["COMMENT ON SCHEMA app IS \'a\\\\b\'"]',
        '',
      ].join('\n'),
    );
    const r = await runCli(
      ['cutoff', 'mal_scs', '--yes', '--json', '--playbook', file, '--dsn', cl.dsn('app_scs')],
      {},
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const check = await cl.connectAs('postgres', cl.password, 'app_scs');
    const { rows } = await check.query<{ c: string }>(`SELECT obj_description('app'::regnamespace, 'pg_namespace') AS c`);
    expect(rows[0]!.c).toBe('a\\b');
  });

  it("role set to the target on the database does not make pgrevoke's sessions run as it: the cutoff contains it and a sql step really revokes", async () => {
    // every session there would run as mal_role: the REVOKE would be the attacker's own, and succeed doing nothing
    const s = await owner('mal_role', 'app_role');
    const setup = await cl.connectAs('postgres', cl.password, 'app_role');
    await setup.query(`CREATE ROLE app_migrator; CREATE SCHEMA app AUTHORIZATION app_migrator`);
    await setup.query(`SET ROLE app_migrator; CREATE TABLE app.t (x int); GRANT USAGE ON SCHEMA app TO mal_role`);
    await setup.query(`GRANT SELECT, INSERT ON app.t TO mal_role; RESET ROLE`);
    await s.query(`ALTER DATABASE app_role SET role = 'mal_role'`);
    await attack('mal_role', 'app_role');
    const dir = mkdtempSync(path.join(tmpdir(), 'pgrevoke-role-'));
    const file = path.join(dir, 'role.yaml');
    writeFileSync(
      file,
      [
        'name: role',
        'reason: compromise',
        'steps:',
        '  - action: snapshot',
        '  - action: contain',
        '  - action: settle',
        '  - action: sql',
        "    statements: ['REVOKE ALL ON app.t FROM {role}']",
        '  - action: verify',
        '',
      ].join('\n'),
    );
    const r = await runCli(
      ['cutoff', 'mal_role', '--yes', '--json', '--playbook', file, '--dsn', cl.dsn('app_role')],
      {},
      { timeoutMs: 60_000 },
    );
    const d = jsonDoc<{ roles: { name: string }[]; steps: { action: string; status: string }[] }>(r);
    expect(r.code, r.stderr).toBe(0);
    expect(d.roles.map((x) => x.name)).toEqual(['mal_role']);
    expect(d.steps.find((x) => x.action === 'sql')!.status).toBe('done');
    expect(await canLogin('mal_role')).toBe(false);
    expect(await sessionsOf('mal_role')).toBe(0);
    const { rows } = await setup.query<{ sel: boolean; ins: boolean }>(
      `SELECT has_table_privilege('mal_role', 'app.t', 'SELECT') AS sel, has_table_privilege('mal_role', 'app.t', 'INSERT') AS ins`,
    );
    expect(rows[0]).toEqual({ sel: false, ins: false });
  });

  it('exit_on_error set on the database does not end the cutoff session at its first lock timeout', async () => {
    // on, the ALTER's lock timeout (the role holding its own pg_authid row) would be FATAL to the session
    await owner('mal_eoe', 'app_eoe');
    await cl.sql(`ALTER DATABASE app_eoe SET exit_on_error = on`);
    const holder = await cl.connectAs('mal_eoe', 'pw-mal_eoe', 'app_eoe');
    holder.on('error', () => undefined);
    await holder.query(`BEGIN; ALTER ROLE mal_eoe PASSWORD 'held'`);
    const r = await runCli(['cutoff', 'mal_eoe', '--yes', '--json', '--dsn', cl.dsn('app_eoe')], {}, { timeoutMs: 60_000 });
    const d = jsonDoc<{ contain: { attempts: number } }>(r);
    expect(r.code, r.stderr).toBe(0);
    expect(d.contain.attempts).toBeGreaterThanOrEqual(2);
    expect(await canLogin('mal_eoe')).toBe(false);
  });

  it("DateStyle set to German on the database leaves the report's timestamps ISO 8601", async () => {
    await owner('mal_date', 'app_date');
    await cl.sql(`ALTER DATABASE app_date SET DateStyle = 'German'`);
    await attack('mal_date', 'app_date');
    const r = await runCli(['cutoff', 'mal_date', '--yes', '--json', '--dsn', cl.dsn('app_date')], {}, { timeoutMs: 60_000 });
    const d = jsonDoc<{
      committedAt: string | null;
      terminated: { backendStart: string | null }[];
      snapshot: { sessions: { backendStart: string | null }[] };
    }>(r);
    expect(r.code, r.stderr).toBe(0);
    const iso = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}/;
    expect(d.committedAt).toMatch(iso);
    expect(d.terminated.length).toBeGreaterThanOrEqual(3);
    for (const t of d.terminated) expect(t.backendStart).toMatch(iso);
    expect(d.snapshot.sessions.length).toBeGreaterThanOrEqual(1);
    for (const x of d.snapshot.sessions) expect(x.backendStart).toMatch(iso);
  });
});
