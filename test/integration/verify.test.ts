// verify as a CI gate, against real servers, run as a subprocess.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

interface RoleResult {
  role: string;
  status: string;
  checks: { name: string; status: string; message: string }[];
}

describe.each(MAJORS)('verify on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'verify-'));
  const verify = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(['verify', '--dsn', cl.dsn(), ...args], env);

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm-pass'`);
    await cl.sql(`CREATE ROLE eve NOLOGIN`);
    await cl.sql(`CREATE ROLE trent LOGIN PASSWORD 't-pass'`);
    await cl.sql(`CREATE ROLE owner_nologin NOLOGIN`);
    await cl.sql(`CREATE TABLE kept (id int)`);
    await cl.sql(`ALTER TABLE kept OWNER TO owner_nologin`);
    await cl.connectAs('mallory', 'm-pass');
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('exits 1 on an exposed role and writes a JUnit file that parses and lists the failure', async () => {
    const junit = path.join(dir, `junit-${major}.xml`);
    const r = await verify(['mallory', 'eve', 'no_such_role', '--json', '--junit', junit]);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as { status: string; roles: RoleResult[] };
    expect(doc.status).toBe('exposed');
    expect(doc.roles.map((x) => [x.role, x.status])).toEqual([
      ['mallory', 'exposed'],
      ['eve', 'contained'],
      ['no_such_role', 'contained'],
    ]);
    const mallory = doc.roles[0]!;
    expect(mallory.checks.find((c) => c.name === 'login')!.status).toBe('fail');
    expect(mallory.checks.find((c) => c.name === 'sessions')!.status).toBe('fail');
    const parsed = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8'));
    const suite = parsed.testsuites.testsuite;
    expect(Number(suite['@_failures'])).toBe(2);
    const cases = suite.testcase as { '@_classname': string; '@_name': string; failure?: { '#text': string } }[];
    const failed = cases.filter((c) => c.failure);
    expect(failed.map((c) => `${c['@_classname']}/${c['@_name']}`).sort()).toEqual(['role mallory/login', 'role mallory/sessions']);
    expect(failed[0]!.failure!['#text']).toContain('fix: pgrevoke cutoff "mallory"');
  });

  it('reads a roles file with comments and prints GitHub annotations under Actions', async () => {
    const file = path.join(dir, `revoked-${major}.txt`);
    writeFileSync(file, '# revoked after the 2026-11 incident\n\neve\nmallory\r\n');
    const r = await verify(['--roles-file', file], { GITHUB_ACTIONS: 'true' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('::error title=pgrevoke verify%3A mallory login::');
    expect(r.stdout).toMatch(/2 role\(s\): 1 contained, 1 exposed/);
  });

  it('--strict fails a NOLOGIN role that still owns objects', async () => {
    expect((await verify(['owner_nologin'])).code).toBe(0);
    const r = await verify(['owner_nologin', '--strict', '--json']);
    expect(r.code).toBe(1);
    const checks = (JSON.parse(r.stdout) as { roles: RoleResult[] }).roles[0]!.checks;
    expect(checks.find((c) => c.name === 'owned_objects')).toMatchObject({ status: 'fail' });
  });

  it('--probe: a login that works is a failure; after cutoff the refusal is recorded; verify exits 0', async () => {
    const before = await verify(['mallory', '--probe', '--probe-password-env', 'VICTIM_PW', '--json'], { VICTIM_PW: 'm-pass' });
    expect(before.code).toBe(1);
    const probeBefore = (JSON.parse(before.stdout) as { roles: RoleResult[] }).roles[0]!.checks.find((c) => c.name === 'probe')!;
    expect(probeBefore.status).toBe('fail');

    const cut = await runCli(['cutoff', 'mallory', '--yes', '--json', '--dsn', cl.dsn()]);
    expect(cut.code, cut.stderr).toBe(0);

    const after = await verify(['mallory', '--probe', '--probe-password-env', 'VICTIM_PW', '--json'], { VICTIM_PW: 'm-pass' });
    expect(after.code, after.stdout).toBe(0);
    const probeAfter = (JSON.parse(after.stdout) as { roles: RoleResult[] }).roles[0]!.checks.find((c) => c.name === 'probe')!;
    expect(probeAfter.status).toBe('pass');
    expect(probeAfter.message).toContain('28000');
    expect(after.stdout).not.toContain('m-pass');
  });

  it('a dropped role whose session survives is exposed (NULL usename, usesysid kept)', async () => {
    await cl.sql(`CREATE ROLE ghost LOGIN PASSWORD 'g-pass'`);
    const g = await cl.connectAs('ghost', 'g-pass');
    await cl.sql(`DROP ROLE ghost`);
    const r = await verify(['ghost', '--json']);
    expect(r.code).toBe(1);
    const checks = (JSON.parse(r.stdout) as { roles: RoleResult[] }).roles[0]!.checks;
    expect(checks.find((c) => c.name === 'sessions')!.message).toContain('sessions of dropped role(s) remain');
    await g.end();
  });

  it('never exits 0 on an error: wrong password and unreachable host are exit 2', async () => {
    const wrong = await runCli(['verify', 'eve', '--dsn', cl.url('postgres', 'wrong-pw-xyz')]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('28P01');
    expect(wrong.stderr).not.toContain('wrong-pw-xyz');
    const down = await runCli(['verify', 'eve', '--dsn', 'postgresql://postgres:x@127.0.0.1:1/postgres', '--connect-timeout', '2']);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('08001');
  });

  it('usage errors are exit 2: no roles, --probe without a variable', async () => {
    expect((await verify([])).code).toBe(2);
    const r = await verify(['eve', '--probe', '--probe-password-env', 'NOT_SET_ANYWHERE']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('NOT_SET_ANYWHERE is not set');
  });
});
