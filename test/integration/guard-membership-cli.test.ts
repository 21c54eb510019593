// pgrevoke guard --on-membership-revoked as a user runs it (the CLI as a subprocess, against real
// servers): alice's session that ran SET ROLE admin is ended within seconds of REVOKE admin FROM
// alice, with an event and an audit line (reason membership_revoked); bob, who keeps admin, and
// carol, who never had it, keep their sessions. With --once the flag is refused (exit 2).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { GuardProcess, until } from '../helpers/guard.js';

const PW = 'pw';

describe.each(MAJORS)('guard --on-membership-revoked (CLI) on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  let audit = '';
  let guard: GuardProcess | null = null;
  const clients: pg.Client[] = [];

  const session = async (role: string, setRole?: string) => {
    const c = await cl.connectAs(role, PW, 'postgres', { application_name: `${role}-app` });
    c.on('error', () => undefined);
    clients.push(c);
    if (setRole) await c.query(`SET ROLE ${setRole}`);
    const pid = (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    return { c, pid };
  };
  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  const currentUser = async (c: pg.Client) => (await c.query<{ u: string }>('SELECT current_user::text AS u')).rows[0]!.u;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql('CREATE ROLE admin NOLOGIN');
    for (const r of ['alice', 'bob', 'carol']) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
    await cl.sql('GRANT admin TO alice, bob');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-membership-'));
    audit = path.join(dir, 'audit.log');
  });

  afterAll(async () => {
    if (guard?.child.exitCode === null) guard.child.kill('SIGKILL');
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('REVOKE admin FROM alice: her SET ROLE admin session is ended and audited; bob and carol are untouched', async () => {
    const alice = await session('alice', 'admin');
    const bob = await session('bob', 'admin');
    const carol = await session('carol');
    expect(await currentUser(alice.c)).toBe('admin');
    const g = (guard = new GuardProcess(['--dsn', cl.dsn(), '--json', '--audit-log', audit, '--on-membership-revoked']));
    await g.connected();
    // the first pass only takes the snapshot: wait until the guard's last statement is a finished probe
    await until(
      async () =>
        (
          await cl.sql(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND state = 'idle' AND query LIKE '%pg_auth_members%'`,
          )
        ).length > 0,
      10_000,
      () => `the guard's first membership probe\n${g.stderr}`,
    );
    expect(await alive(alice.pid)).toBe(true);

    await cl.sql('REVOKE admin FROM alice');
    await until(
      async () => !(await alive(alice.pid)),
      5000,
      () => `alice's session to end\n${g.stderr}`,
    );

    await until(() => g.events().length > 0, 5000, 'the kill event');
    expect(g.events()).toEqual([
      expect.objectContaining({ event: 'kill', pid: alice.pid, role: 'alice', reason: 'membership_revoked', terminated: true }),
    ]);
    expect(g.events()[0]!.detail).toContain('"admin"');
    // a whole line: the guard may be mid-append when the file is first read
    await until(async () => (await fs.readFile(audit, 'utf8').catch(() => '')).endsWith('\n'), 5000, 'the audit line');
    const lines = (await fs.readFile(audit, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { target: string; reason: string; result: string; session: { pid: number } });
    expect(lines).toEqual([
      expect.objectContaining({
        target: 'alice',
        reason: 'membership_revoked',
        result: 'done',
        session: expect.objectContaining({ pid: alice.pid }),
      }),
    ]);

    // bob kept admin, carol never had it: both still query, bob still as admin
    expect(await currentUser(bob.c)).toBe('admin');
    expect(await currentUser(carol.c)).toBe('carol');
    expect(await g.stop()).toBe(0);
  });

  it('--once with --on-membership-revoked: refused, exit 2 (one pass cannot see a change)', async () => {
    const r = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--on-membership-revoked']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--on-membership-revoked cannot be used with --once');
  });
});
