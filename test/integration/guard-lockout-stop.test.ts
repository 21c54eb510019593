// What guard's stop keeps of the lockout's counting (issue 16), the CLI against a real server
// logging csvlog read over SQL: the knocks counted just before SIGTERM (written at most every 5 s
// while it runs) are in lockouts.json after it exits.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { redTeamStart, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead, lockoutEvents } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --lockout-after at stop on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  const running: CliRun[] = [];

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-stop-'));
  });

  afterAll(async () => {
    for (const g of running) g.signal('SIGKILL');
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const start = async (env: NodeJS.ProcessEnv, after: number) => {
    const g = startCli(['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', String(after), '--hba-file', cl.hbaFile], env);
    running.push(g);
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    await firstLogRead(cl, g);
    return g;
  };
  const stop = async (g: CliRun) => {
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  };
  const fail = async (n: number, from: string, expected = '28P01') => {
    for (let i = 0; i < n; i++) expect(await attempt(cl, { user: 'alice', from })).toBe(expected);
  };

  it('knocks counted just before SIGTERM are in lockouts.json after exit', async () => {
    const { env } = await redTeamStart(cl, client, dir);
    const g = await start(env, 3);
    await fail(3, '127.0.0.2');
    await until(
      () => lockoutEvents(g, 'lockout').length === 1,
      10_000,
      () => `the lockout\n${g.stdout()}\n${g.stderr()}`,
    );
    // two knocks (refused by the reject line), read and counted by the passes of the next second,
    // well within the 5 s the knocks may wait before they are written
    await fail(2, '127.0.0.2', '28000');
    await new Promise((r) => setTimeout(r, 1200));
    await stop(g);
    const listed = await runCli(['lockouts', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const doc = JSON.parse(listed.stdout) as { lockouts: { address: string; knocks: number; lastKnock: string | null }[] };
    expect(doc.lockouts.map((l) => [l.address, l.knocks])).toEqual([['127.0.0.2', 2]]);
    expect(doc.lockouts[0]!.lastKnock).not.toBeNull();
  });
});
