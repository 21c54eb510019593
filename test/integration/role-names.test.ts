// Role names PostgreSQL would cut: a 64-byte name whose first 63 bytes are an existing role's name
// would act on that role (postgres-facts.md section 8). Every way a name reaches pgrevoke (argv,
// --deny, a deny file, a roles file) refuses it with one line and exit 2, before anything changes;
// the 63-byte role itself is still handled.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { canQuery, MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const R63 = 'r'.repeat(63);
const R64 = `${R63}x`;

/** Exit 2 and exactly one line on stderr, `pgrevoke: error: <where>: role name ... 64 bytes long ...`. */
function refused(r: CliResult, where: string): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toContain(`pgrevoke: error: ${where}`);
  expect(lines[0]).toContain(`role name "${R64}" refused: it is 64 bytes long`);
}

describe.each(MAJORS)('role names over 63 bytes on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  let victim: pg.Client;
  let victimPid = 0;
  const canLogin = async () => (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [R63]))[0]!.l;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE "${R63}" LOGIN PASSWORD 'pw'`);
    victim = await cl.connectAs(R63, 'pw');
    victimPid = (await victim.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-names-'));
  });
  afterAll(async () => {
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('cutoff and inspect refuse a 64-byte name on argv; the 63-byte role keeps its login and session', async () => {
    refused(await runCli(['cutoff', R64, '--yes', '--dsn', cl.dsn()]), 'cutoff <role>');
    refused(await runCli(['cutoff', 'someone', R64, '--yes', '--dsn', cl.dsn()]), 'cutoff <role>');
    refused(await runCli(['inspect', R64, '--dsn', cl.dsn()]), 'inspect <role>');
    refused(await runCli(['sessions', '--user', R64, '--dsn', cl.dsn()]), '--user');
    refused(await runCli(['verify', R64, '--dsn', cl.dsn()]), 'verify <role>');
    refused(await runCli(['guard', '--once', '--deny', R64, '--dsn', cl.dsn()]), '--deny');
    expect(await canLogin()).toBe(true);
    expect(await canQuery(victim)).toBe(true);
  });

  it('a 64-byte connecting user (in the DSN, PGUSER or a fleet file) is refused before any login', async () => {
    const dsn = `postgresql://${R64}:pw@127.0.0.1:${cl.port}/postgres`;
    refused(await runCli(['inspect', 'someone', '--dsn', dsn]), 'the connecting user');
    refused(await runCli(['inspect', 'someone', '--host', '127.0.0.1', '--port', String(cl.port)], { PGUSER: R64 }), 'the connecting user');
    const fleet = path.join(dir, `fleet-${major}.yaml`);
    await fs.writeFile(fleet, `clusters:\n  - name: one\n    nodes: ["${dsn}"]\n`);
    const f = await runCli(['inspect', 'someone', '--fleet', fleet]);
    expect(f.code, f.stderr).toBe(2);
    expect(f.stderr).toContain(`role name "${R64}" refused: it is 64 bytes long`);
    expect(await canQuery(victim)).toBe(true);
  });

  it('a 64-byte name in a deny file (guard) or a roles file (verify) is refused naming the file and line', async () => {
    const file = path.join(dir, `deny-${major}.txt`);
    await fs.writeFile(file, `# denied\nmallory\n${R64}\n`);
    const g = await runCli(['guard', '--deny-file', file, '--dsn', cl.dsn()], {}, { timeoutMs: 20_000 });
    refused(g, `deny file ${file} line 3: `);
    const v = await runCli(['verify', '--roles-file', file, '--dsn', cl.dsn()]);
    refused(v, `roles file ${file} line 3: `);
    expect(await canQuery(victim)).toBe(true);
  });

  it('the 63-byte name still works: inspect finds it, guard ends its session', async () => {
    const insp = await runCli(['inspect', R63, '--json', '--dsn', cl.dsn()]);
    expect(insp.code, insp.stderr).toBe(0);
    expect((JSON.parse(insp.stdout) as { role: { name: string } }).role.name).toBe(R63);
    const file = path.join(dir, `deny63-${major}.txt`);
    await fs.writeFile(file, `${R63}\n`);
    const g = await runCli(['guard', '--once', '--json', '--deny-file', file, '--dsn', cl.dsn()]);
    expect(g.code, g.stderr).toBe(1);
    expect(JSON.parse(g.stdout.trim())).toMatchObject({ event: 'kill', pid: victimPid, role: R63, reason: 'denylisted' });
  });
});
