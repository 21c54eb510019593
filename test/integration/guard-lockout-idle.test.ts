// guard's --idle-timeout-role never ends guard's own lockout connection (issue 16): that connection is
// idle between log reads (here 1.5 s, one --interval), longer than a 1 s rule on guard's role, yet
// the tick spares it as it spares its own backend; another idle session of that role is ended,
// and the lockout still locks. A real server logging csvlog read over SQL.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { canQuery, MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until, type GuardEventLine } from '../helpers/guard.js';
import { loginFrom, redTeamStart, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --idle-timeout-role over its own role with --lockout-after on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  let guard: CliRun | null = null;

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    // guard's own role, over the Unix socket (local trust): the rule on it spares the test's admin session
    await cl.sql('CREATE ROLE guardian SUPERUSER LOGIN');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-idle-'));
  });

  afterAll(async () => {
    guard?.signal('SIGKILL');
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const kills = (g: CliRun) =>
    g
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as GuardEventLine)
      .filter((e) => e.event === 'kill');

  it('spares the lockout connection, ends another idle session of the role, and locks', async () => {
    const { env } = await redTeamStart(cl, client, dir);
    const dsn = `postgresql://guardian@/postgres?host=${encodeURIComponent(cl.socketDir)}&port=${cl.port}`;
    const args = ['guard', '--dsn', dsn, '--json', '--interval', '1500', '--idle-timeout-role', 'guardian=1s'];
    const g = (guard = startCli([...args, '--lockout-after', '3', '--hba-file', cl.hbaFile], env));
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    // a few ticks, each after the lockout connection sat idle for one interval (its reads follow the tick)
    await new Promise((r) => setTimeout(r, 5000));
    expect(kills(g).filter((k) => k.application === 'pgrevoke-guard')).toEqual([]);
    await firstLogRead(cl, g);
    const idle = new pg.Client({
      host: cl.socketDir,
      port: cl.port,
      user: 'guardian',
      database: 'postgres',
      application_name: 'idle-victim',
    });
    idle.on('error', () => undefined);
    await idle.connect();
    // left idle (a query to look would make it active): the guard's event says it was ended
    await until(
      () => kills(g).some((k) => k.application === 'idle-victim'),
      10_000,
      () => `the idle session to be ended\n${g.stdout()}\n${g.stderr()}`,
    );
    expect(await canQuery(idle)).toBe(false);
    await idle.end().catch(() => undefined);
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await until(
      async () => (await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from 127.0.0.2 to be refused\n${g.stdout()}\n${g.stderr()}`,
    );
    expect(kills(g).map((k) => [k.reason, k.application])).toEqual([['idle_timeout', 'idle-victim']]);
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  });
});
