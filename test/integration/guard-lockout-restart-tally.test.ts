// guard's failure counts below the threshold across a guard restart (issue 16), the CLI against a
// real server logging csvlog read over SQL: guard keeps its log position, so failures read before
// a restart are never read again; the counts of each key still inside the window are kept in the
// state directory, so 3 failures, a restart, then 2 more lock the pair out at --lockout-after 5.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { redTeamStart } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { lockoutEvents, lockoutGuardFixture } from './guard-lockout-helpers.js';

/** The counts on file, for a failure's message. */
const tallyText = (state: string) => {
  try {
    return readFileSync(path.join(state, 'lockout-tally.json'), 'utf8');
  } catch (err) {
    return `(lockout-tally.json: ${(err as Error).message})`;
  }
};

describe.each(MAJORS)('guard --lockout-after counts across a restart on PostgreSQL %i', (major) => {
  const fx = lockoutGuardFixture(major, 'pgrevoke-guard-tally-');

  const fail = async (n: number, from: string) => {
    for (let i = 0; i < n; i++) expect(await attempt(fx.cl, { user: 'alice', from })).toBe('28P01');
  };

  it('3 failures, SIGTERM, start again, 2 more: the pair is locked out with count 5', async () => {
    const { env } = await redTeamStart(fx.cl, fx.client, fx.dir);
    const first = await fx.start(env, 5, { logRead: true });
    await fail(3, '127.0.0.2');
    // read and counted by the passes of the next second (the log position is then saved)
    await new Promise((r) => setTimeout(r, 1500));
    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(lockoutEvents(first, 'lockout')).toEqual([]);

    const second = await fx.start(env, 5, { logRead: true });
    await fail(2, '127.0.0.2');
    await until(
      () => lockoutEvents(second, 'lockout').length === 1,
      10_000,
      () =>
        `the lockout after the restart\n${first.stderr()}\n${second.stdout()}\n${second.stderr()}\n${tallyText(env.PGREVOKE_STATE_DIR)}`,
    );
    expect(await attempt(fx.cl, { user: 'alice', from: '127.0.0.2' })).toBe('28000');
    const listed = await runCli(['lockouts', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const doc = JSON.parse(listed.stdout) as { lockouts: { role: string; address: string; count: number }[] };
    expect(doc.lockouts.map((l) => [l.role, l.address, l.count])).toEqual([['alice', '127.0.0.2', 5]]);
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
