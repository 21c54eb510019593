// guard's failure counts below the threshold across a guard restart (issue 16), the CLI against a
// real server logging csvlog read over SQL: guard keeps its log position, so failures read before
// a restart are never read again; the counts of each key still inside the window are kept in the
// state directory, so 3 failures, a restart, then 2 more lock the pair out at --lockout-after 5.
import { promises as fs, readFileSync } from 'node:fs';
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

/** The counts on file, for a failure's message. */
const tallyText = (state: string) => {
  try {
    return readFileSync(path.join(state, 'lockout-tally.json'), 'utf8');
  } catch (err) {
    return `(lockout-tally.json: ${(err as Error).message})`;
  }
};

describe.each(MAJORS)('guard --lockout-after counts across a restart on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  const running: CliRun[] = [];

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-tally-'));
  });

  afterAll(async () => {
    for (const g of running) g.signal('SIGKILL');
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const start = async (env: NodeJS.ProcessEnv) => {
    const g = startCli(['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', '5', '--hba-file', cl.hbaFile], env);
    running.push(g);
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    await firstLogRead(cl, g);
    return g;
  };
  const fail = async (n: number, from: string) => {
    for (let i = 0; i < n; i++) expect(await attempt(cl, { user: 'alice', from })).toBe('28P01');
  };

  it('3 failures, SIGTERM, start again, 2 more: the pair is locked out with count 5', async () => {
    const { env } = await redTeamStart(cl, client, dir);
    const first = await start(env);
    await fail(3, '127.0.0.2');
    // read and counted by the passes of the next second (the log position is then saved)
    await new Promise((r) => setTimeout(r, 1500));
    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(lockoutEvents(first, 'lockout')).toEqual([]);

    const second = await start(env);
    await fail(2, '127.0.0.2');
    await until(
      () => lockoutEvents(second, 'lockout').length === 1,
      10_000,
      () =>
        `the lockout after the restart\n${first.stderr()}\n${second.stdout()}\n${second.stderr()}\n${tallyText(env.PGREVOKE_STATE_DIR)}`,
    );
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.2' })).toBe('28000');
    const listed = await runCli(['lockouts', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const doc = JSON.parse(listed.stdout) as { lockouts: { role: string; address: string; count: number }[] };
    expect(doc.lockouts.map((l) => [l.role, l.address, l.count])).toEqual([['alice', '127.0.0.2', 5]]);
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
