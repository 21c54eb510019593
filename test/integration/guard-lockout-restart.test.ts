// guard's lockout across guard restarts and failing passes (issue 16), the CLI against real servers
// logging csvlog read over SQL:
// - the log position is saved in the state directory (mode 0600): failures logged while guard was
//   down are counted when it starts again, lines already counted are not read twice (no knocks),
//   a position in a log file rotated away and removed resumes in the files after it, and a saved
//   position that is a symbolic link is ignored with one warning;
// - a pass whose ingest throws (the lockouts file refused) keeps its failures for the next pass.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliRun } from '../helpers/cli.js';
import { MAJORS } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { loginFrom, redTeamStart } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead, lockoutEvents, lockoutGuardFixture } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --lockout-after across restarts on PostgreSQL %i', (major) => {
  const fx = lockoutGuardFixture(major, 'pgrevoke-guard-restart-');

  const fail3 = async (from: string) => {
    for (let i = 0; i < 3; i++) expect(await attempt(fx.cl, { user: 'alice', from })).toBe('28P01');
  };
  const refused = (from: string, g: CliRun) =>
    until(
      async () => (await loginFrom(fx.cl, from, 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from ${from} to be refused\n${g.stdout()}\n${g.stderr()}`,
    );
  const cursors = async (state: string) => {
    const d = path.join(state, 'log-cursors');
    return Promise.all((await fs.readdir(d)).map(async (f) => ({ file: path.join(d, f), mode: (await fs.lstat(path.join(d, f))).mode })));
  };
  const knocks = async (state: string) =>
    (JSON.parse(await fs.readFile(path.join(state, 'lockouts.json'), 'utf8')) as { lockouts: { address: string; knocks: number }[] })
      .lockouts;

  it('failures while guard is down are counted at its restart, once; a rotated-away position resumes; a linked one is ignored', async () => {
    const { env } = await redTeamStart(fx.cl, fx.client, fx.dir);
    const state = env.PGREVOKE_STATE_DIR;
    const g1 = await fx.start(env, 3);
    await firstLogRead(fx.cl, g1);
    await fx.stop(g1);
    const [saved] = await cursors(state);
    expect(saved!.mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await fs.readFile(saved!.file, 'utf8')) as { node: string; source: string; cursor: { file: string } };
    expect(doc).toMatchObject({ v: 1, node: `127.0.0.1:${fx.cl.port}`, source: 'sql', systemIdentifier: expect.stringMatching(/^\d+$/) });

    // down: three failures; up again: the pair is locked, from those three
    await fail3('127.2.0.2');
    const g2 = await fx.start(env, 3);
    await refused('127.2.0.2', g2);
    await until(
      () => lockoutEvents(g2, 'lockout').length === 1,
      10_000,
      () => `the lockout event\n${g2.stdout()}`,
    );
    expect(lockoutEvents(g2, 'lockout')[0]).toMatchObject({ role: 'alice', address: '127.2.0.2', count: 3 });
    // the refused login is a knock on the lockout: counted by this guard before it stops
    await until(
      async () => (await knocks(state))[0]?.knocks === 1,
      10_000,
      () => `the knock counted\n${g2.stderr()}`,
    );
    await fx.stop(g2);

    // up once more: the lines already counted are not read again (the three failures and the knock would knock again)
    const g3 = await fx.start(env, 3);
    await firstLogRead(fx.cl, g3);
    await fail3('127.3.0.3');
    await refused('127.3.0.3', g3);
    await fx.stop(g3);
    expect((await knocks(state)).map((l) => [l.address, l.knocks])).toEqual([
      ['127.2.0.2', 1],
      ['127.3.0.3', expect.any(Number)],
    ]);

    // down: the log rotates (a new name: log_filename has seconds) and the file the position was in is removed
    const { cursor } = JSON.parse(await fs.readFile((await cursors(state))[0]!.file, 'utf8')) as { cursor: { file: string } };
    await new Promise((r) => setTimeout(r, 1100));
    await fx.cl.sql('SELECT pg_rotate_logfile()');
    await until(
      async () => (await fx.cl.sql<{ f: string }>(`SELECT pg_current_logfile('csvlog') AS f`))[0]!.f !== cursor.file,
      10_000,
      'the log to rotate',
    );
    await fs.rm(path.join(fx.cl.dataDir, cursor.file));
    await fail3('127.4.0.4');
    const g4 = await fx.start(env, 3);
    await refused('127.4.0.4', g4);
    await fx.stop(g4);

    // a saved position that is a symbolic link is never followed: one warning, and the reader starts at the end
    const [c] = await cursors(state);
    const copy = path.join(fx.dir, 'cursor-copy.json');
    await fs.copyFile(c!.file, copy);
    await fs.rm(c!.file);
    await fs.symlink(copy, c!.file);
    await fail3('127.5.0.5');
    const g5 = await fx.start(env, 3);
    await firstLogRead(fx.cl, g5);
    await fail3('127.6.0.6');
    await refused('127.6.0.6', g5);
    await fx.stop(g5);
    expect(g5.stderr().match(/saved log position ignored: .*symbolic link/g)).toHaveLength(1);
    expect(await loginFrom(fx.cl, '127.5.0.5', 'alice', 'pw-alice')).toBe('allow');
  });

  it('a pass that throws keeps its failures: counted once the lockouts file can be read again', async () => {
    const { env } = await redTeamStart(fx.cl, fx.client, fx.dir);
    const store = path.join(env.PGREVOKE_STATE_DIR, 'lockouts.json');
    const g = await fx.start(env, 3);
    await firstLogRead(fx.cl, g);
    // a link where the lockouts file goes: every read of it is refused, so every pass throws
    await fs.symlink(path.join(fx.dir, 'elsewhere.json'), store);
    const { t } = (await fx.cl.sql<{ t: string }>('SELECT now()::text AS t'))[0]!;
    await fail3('127.7.0.7');
    await until(
      () => /lockout pass failed: .*symbolic link/.test(g.stderr()),
      10_000,
      () => `a failed pass\n${g.stderr()}`,
    );
    // the log read after the failures, and read again: the pass after the first of those reads has them (and failed)
    const reads = new Set<string>();
    await until(
      async () => {
        const rows = await fx.cl.sql<{ q: string }>(
          `SELECT query_start::text AS q FROM pg_stat_activity
            WHERE application_name = 'pgrevoke-guard' AND query LIKE '%pg_read_binary_file%' AND query_start > $1::timestamptz`,
          [t],
        );
        for (const r of rows) reads.add(r.q);
        return reads.size >= 6;
      },
      15_000,
      () => `the guard's log reads after the failures\n${g.stderr()}`,
    );
    expect(await loginFrom(fx.cl, '127.7.0.7', 'alice', 'pw-alice')).toBe('allow');
    await fs.rm(store);
    await refused('127.7.0.7', g);
    await until(
      () => lockoutEvents(g, 'lockout').length === 1,
      10_000,
      () => `the lockout event\n${g.stdout()}`,
    );
    expect(lockoutEvents(g, 'lockout')).toEqual([expect.objectContaining({ address: '127.7.0.7', count: 3 })]);
    await fx.stop(g);
  });
});
