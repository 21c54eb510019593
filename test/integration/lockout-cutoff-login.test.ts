// A `role` lockout and a cutoff of the same role: the cutoff taken during the lockout records the
// role as the lockout left it (NOLOGIN CONNECTION LIMIT 0), so its restore gives back just that. The
// lockout's end, meanwhile, must never give back LOGIN while the cutoff holds; once the cutoff is
// restored, the LOGIN the lockout took (and its connection limit) comes back, at the next pass.
// The real engine on a real server; cutoff and restore as the CLI runs them.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLockouts } from '../../src/lockout/store.js';
import type { LockoutNode } from '../../src/lockout/types.js';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { lockoutEngine, lockoutNode, loginFrom } from '../helpers/lockout.js';

const HBA =
  ['local all all trust', 'host all postgres 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n') + '\n';

const failure = (): AuthFailure => ({
  at: new Date().toISOString(),
  user: 'mallory',
  database: 'postgres',
  address: '127.0.0.2',
  sqlstate: '28P01',
  kind: 'password',
  message: 'password authentication failed for user "mallory"',
  hbaLine: null,
  pid: null,
});

describe.each(MAJORS)('a role lockout and a cutoff between, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE mallory LOGIN CONNECTION LIMIT 5 PASSWORD 'pw-mallory'`);
    ({ client, node } = await lockoutNode(cl));
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  const login = async () =>
    (await cl.sql<{ l: boolean; c: number }>(`SELECT rolcanlogin AS l, rolconnlimit AS c FROM pg_roles WHERE rolname = 'mallory'`))[0];

  it('the lockout ends while the cutoff holds: LOGIN owed, not given; the cutoff restored: LOGIN back as before the lockout', async () => {
    const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-lockout-cutoff-')) };
    const e = lockoutEngine([node], env, { by: 'role' }, { recheckMs: 0 });
    const [made] = await e.ingest([failure(), failure(), failure()]);
    await e.enforce();
    expect(await login()).toEqual({ l: false, c: 0 });
    const cut = await runCli(['cutoff', 'mallory', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn()], env, {
      timeoutMs: 90_000,
    });
    expect(cut.code, cut.stderr).toBe(0);

    const after = new Date(Date.parse(made!.until) + 1);
    const end = await e.enforce(after);
    expect(end.map((x) => [x.event, x.detail])).toEqual([
      ['login_kept', expect.stringMatching(/^LOGIN not given back yet: .*cutoff.*it comes back once that cutoff is restored$/)],
    ]);
    expect(await e.enforce(new Date(after.getTime() + 1))).toEqual([]);
    expect(await login()).toEqual({ l: false, c: 0 });
    expect((await readLockouts(env)).map((l) => [l.id, l.ended?.why, l.applied.length])).toEqual([[made!.id, 'expired', 1]]);

    const restore = await runCli(['restore', 'mallory', '--yes', '--json', '--dsn', cl.dsn()], env, { timeoutMs: 90_000 });
    expect(restore.code, restore.stderr).toBe(0);
    // restore gives back what the cutoff found: the lockout's NOLOGIN
    expect(await login()).toEqual({ l: false, c: 0 });
    const back = await e.enforce(new Date(after.getTime() + 2));
    expect(back.map((x) => [x.event, x.detail])).toEqual([['expired', 'LOGIN given back (connection limit 5)']]);
    expect(await login()).toEqual({ l: true, c: 5 });
    expect(await loginFrom(cl, '127.0.0.2', 'mallory', 'pw-mallory')).toBe('allow');
    expect(await readLockouts(env)).toEqual([]);
  });
});
