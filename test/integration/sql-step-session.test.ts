// A sql step's statements run on a session of their own: what they change in a session (a
// set_config() in a statement, or an attacker's event trigger fired by their DDL) must not reach
// verify, which reads through the cutoff's main session. The event trigger is the red team's: a
// superuser target plants one (and a pg_roles view that says it cannot log in, for a session whose
// search_path puts public first), then disowns both; on 17+ it must not fire at all, before 17 the
// report names it and verify still tells the truth.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

interface Report {
  exitCode: number;
  steps: { action: string; status: string; detail: string | null }[];
  warnings: string[];
  verification: { role: string; verdict: string; findings: { id: string }[] }[];
}

/** pg_catalog.pg_roles, except that `name` is shown as `canLogin`. */
const lyingPgRoles = (name: string, canLogin: boolean) => `CREATE VIEW public.pg_roles AS
SELECT r.oid, r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
  CASE WHEN r.rolname = '${name}' THEN ${canLogin} ELSE r.rolcanlogin END AS rolcanlogin, r.rolreplication,
  CASE WHEN r.rolname = '${name}' THEN -1 ELSE r.rolconnlimit END AS rolconnlimit, r.rolpassword, r.rolvaliduntil,
  r.rolbypassrls, r.rolconfig
FROM pg_catalog.pg_roles r`;

describe.each(MAJORS)('a sql step on a session of its own, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-sql-session-'));
  const env = { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
  const playbook = (name: string, statement: string) => {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        `name: ${name}`,
        'reason: compromise',
        'steps:',
        '  - action: snapshot',
        '  - action: contain',
        '    strip_privileges: true',
        '  - action: settle',
        '  - action: sql',
        `    statements: [${JSON.stringify(statement)}]`,
        '  - action: verify',
        '',
      ].join('\n'),
    );
    return file;
  };
  const role = async (name: string) =>
    (await cl.sql<{ rolcanlogin: boolean; rolsuper: boolean }>(`SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1`, [name]))[0];

  beforeAll(async () => {
    cl = await startCluster(major);
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it("a statement's set_config('search_path', ...) does not change what verify reads", async () => {
    await cl.sql(`CREATE ROLE cfg_target LOGIN`);
    await cl.sql(`CREATE DATABASE cfg`);
    const db = await cl.connectAs('postgres', cl.password, 'cfg');
    // read through public first, verify would see the role still able to log in
    await db.query(lyingPgRoles('cfg_target', true));
    const file = playbook('cfg', "SELECT pg_catalog.set_config('search_path', 'public, pg_catalog, pg_temp', false)");
    const r = await runCli(['cutoff', 'cfg_target', '--playbook', file, '--yes', '--json', '--dsn', cl.dsn('cfg')], env, {
      timeoutMs: 60_000,
    });
    const d = jsonDoc<Report>(r);
    expect(d.steps.find((s) => s.action === 'sql')!.status).toBe('done');
    expect(d.verification.map((v) => [v.role, v.verdict])).toEqual([['cfg_target', 'contained']]);
    expect(r.code, r.stderr).toBe(0);
    expect((await role('cfg_target'))!.rolcanlogin).toBe(false);
  });

  it(
    major >= 17
      ? "an attacker's event trigger does not fire on the sql step's DDL (event triggers are off on its session)"
      : "an attacker's event trigger (it cannot be turned off before 17) is named in a warning, and verify still tells the truth",
    async () => {
      await cl.sql(`CREATE DATABASE evt`);
      const db = await cl.connectAs('postgres', cl.password, 'evt');
      // setup-evtrig.sql of the red team, in a database of its own
      await db.query(`CREATE ROLE boss LOGIN SUPERUSER PASSWORD 'b'`);
      await db.query(`SET ROLE boss`);
      await db.query(`CREATE FUNCTION public.zz_audit() RETURNS event_trigger LANGUAGE plpgsql AS $f$
BEGIN
  -- runs as whoever runs the DDL: pgrevoke's operator
  PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog, pg_temp', false);
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'boss2') THEN
    CREATE ROLE boss2 LOGIN SUPERUSER PASSWORD 'b2';
  END IF;
  ALTER ROLE boss LOGIN CONNECTION LIMIT -1;
END $f$`);
      await db.query(`CREATE EVENT TRIGGER zz_audit ON ddl_command_start EXECUTE FUNCTION public.zz_audit()`);
      await db.query(`ALTER EVENT TRIGGER zz_audit ENABLE ALWAYS`);
      await db.query(lyingPgRoles('boss', false));
      await db.query(`RESET ROLE`);
      await db.query(`ALTER FUNCTION public.zz_audit() OWNER TO postgres; ALTER EVENT TRIGGER zz_audit OWNER TO postgres`);
      await db.query(`ALTER VIEW public.pg_roles OWNER TO postgres`);
      // the setup's own DDL fired it: only what the cutoff fires is to count
      await cl.sql(`DROP ROLE boss2`);
      const file = playbook('evtrig', 'REVOKE CREATE ON SCHEMA public FROM {role}');
      const r = await runCli(['cutoff', 'boss', '--playbook', file, '--yes', '--json', '--dsn', cl.dsn('evt')], env, { timeoutMs: 60_000 });
      const d = jsonDoc<Report>(r);
      expect(d.steps.find((s) => s.action === 'sql')!.status).toBe('done');
      const boss2 = await role('boss2');
      if (major >= 17) {
        expect(r.code, r.stderr).toBe(0);
        expect(d.verification.map((v) => [v.role, v.verdict])).toEqual([['boss', 'contained']]);
        expect(await role('boss')).toEqual({ rolcanlogin: false, rolsuper: false });
        expect(boss2).toBeUndefined();
        expect(d.warnings.join('\n')).not.toContain('zz_audit');
      } else {
        // it fired as the operator: boss can log in again, and the report says so
        expect(d.warnings.join('\n')).toMatch(
          /database "evt" has enabled event trigger\(s\) "zz_audit" \(ddl_command_start, public\.zz_audit\(\), owner "postgres"\): they run with the operator's privileges/,
        );
        expect((await role('boss'))!.rolcanlogin).toBe(true);
        expect(boss2).toBeDefined();
        const v = d.verification.find((x) => x.role === 'boss')!;
        expect(v.verdict).toBe('exposed');
        expect(v.findings.map((f) => f.id)).toContain('role.can_login');
        expect(r.code, r.stderr).toBe(1);
      }
    },
  );
});
