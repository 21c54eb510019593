// What guard's stop keeps of the lockout's counting (issue 16), the CLI against a real server
// logging csvlog read over SQL: the knocks counted just before SIGTERM (written at most every 5 s
// while it runs) are in lockouts.json after it exits.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { redTeamStart } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { lockoutEvents, lockoutGuardFixture } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --lockout-after at stop on PostgreSQL %i', (major) => {
  const f = lockoutGuardFixture(major, 'pgrevoke-guard-stop-');
  const fail = async (n: number, from: string, expected = '28P01') => {
    for (let i = 0; i < n; i++) expect(await attempt(f.cl, { user: 'alice', from })).toBe(expected);
  };

  it('knocks counted just before SIGTERM are in lockouts.json after exit', async () => {
    const { env } = await redTeamStart(f.cl, f.client, f.dir);
    const g = await f.start(env, 3, { logRead: true });
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
    await f.stop(g);
    const listed = await runCli(['lockouts', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const doc = JSON.parse(listed.stdout) as { lockouts: { address: string; knocks: number; lastKnock: string | null }[] };
    expect(doc.lockouts.map((l) => [l.address, l.knocks])).toEqual([['127.0.0.2', 2]]);
    expect(doc.lockouts[0]!.lastKnock).not.toBeNull();
  });
});
