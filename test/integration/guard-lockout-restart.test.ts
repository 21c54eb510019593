// guard's lockout across guard restarts and failing passes (issue 16), the CLI against real servers
// logging csvlog read over SQL:
// - the log position is saved in the state directory (mode 0600): failures logged while guard was
//   down are counted when it starts again, lines already counted are not read twice (no knocks),
//   a position in a log file rotated away and removed resumes in the files after it, and a saved
//   position that is a symbolic link is ignored with one warning;
// - a pass whose ingest throws (the lockouts file refused) keeps its failures for the next pass.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { loginFrom, redTeamStart, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead, lockoutEvents } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --lockout-after across restarts on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  const running: CliRun[] = [];

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-restart-'));
  });

  afterAll(async () => {
    for (const g of running) g.signal('SIGKILL');
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const start = async (env: NodeJS.ProcessEnv) => {
    const g = startCli(['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', '3', '--hba-file', cl.hbaFile], env);
    running.push(g);
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    return g;
  };
  const stop = async (g: CliRun) => {
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  };
  const fail3 = async (from: string) => {
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from })).toBe('28P01');
  };
  const refused = (from: string, g: CliRun) =>
    until(
      async () => (await loginFrom(cl, from, 'alice', 'pw-alice')) === '28000',
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
    const { env } = await redTeamStart(cl, client, dir);
    const state = env.PGREVOKE_STATE_DIR;
    const g1 = await start(env);
    await firstLogRead(cl, g1);
    await stop(g1);
    const [saved] = await cursors(state);
    expect(saved!.mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await fs.readFile(saved!.file, 'utf8')) as { node: string; source: string; cursor: { file: string } };
    expect(doc).toMatchObject({ v: 1, node: `127.0.0.1:${cl.port}`, source: 'sql', systemIdentifier: expect.stringMatching(/^\d+$/) });

    // down: three failures; up again: the pair is locked, from those three
    await fail3('127.2.0.2');
    const g2 = await start(env);
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
    await stop(g2);

    // up once more: the lines already counted are not read again (the three failures and the knock would knock again)
    const g3 = await start(env);
    await firstLogRead(cl, g3);
    await fail3('127.3.0.3');
    await refused('127.3.0.3', g3);
    await stop(g3);
    expect((await knocks(state)).map((l) => [l.address, l.knocks])).toEqual([
      ['127.2.0.2', 1],
      ['127.3.0.3', expect.any(Number)],
    ]);

    // down: the log rotates (a new name: log_filename has seconds) and the file the position was in is removed
    const { cursor } = JSON.parse(await fs.readFile((await cursors(state))[0]!.file, 'utf8')) as { cursor: { file: string } };
    await new Promise((r) => setTimeout(r, 1100));
    await cl.sql('SELECT pg_rotate_logfile()');
    await until(
      async () => (await cl.sql<{ f: string }>(`SELECT pg_current_logfile('csvlog') AS f`))[0]!.f !== cursor.file,
      10_000,
      'the log to rotate',
    );
    await fs.rm(path.join(cl.dataDir, cursor.file));
    await fail3('127.4.0.4');
    const g4 = await start(env);
    await refused('127.4.0.4', g4);
    await stop(g4);

    // a saved position that is a symbolic link is never followed: one warning, and the reader starts at the end
    const [c] = await cursors(state);
    const copy = path.join(dir, 'cursor-copy.json');
    await fs.copyFile(c!.file, copy);
    await fs.rm(c!.file);
    await fs.symlink(copy, c!.file);
    await fail3('127.5.0.5');
    const g5 = await start(env);
    await firstLogRead(cl, g5);
    await fail3('127.6.0.6');
    await refused('127.6.0.6', g5);
    await stop(g5);
    expect(g5.stderr().match(/saved log position ignored: .*symbolic link/g)).toHaveLength(1);
    expect(await loginFrom(cl, '127.5.0.5', 'alice', 'pw-alice')).toBe('allow');
  });

  it('a pass that throws keeps its failures: counted once the lockouts file can be read again', async () => {
    const { env } = await redTeamStart(cl, client, dir);
    const store = path.join(env.PGREVOKE_STATE_DIR, 'lockouts.json');
    const g = await start(env);
    await firstLogRead(cl, g);
    // a link where the lockouts file goes: every read of it is refused, so every pass throws
    await fs.symlink(path.join(dir, 'elsewhere.json'), store);
    const { t } = (await cl.sql<{ t: string }>('SELECT now()::text AS t'))[0]!;
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
        const rows = await cl.sql<{ q: string }>(
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
    expect(await loginFrom(cl, '127.7.0.7', 'alice', 'pw-alice')).toBe('allow');
    await fs.rm(store);
    await refused('127.7.0.7', g);
    await until(
      () => lockoutEvents(g, 'lockout').length === 1,
      10_000,
      () => `the lockout event\n${g.stdout()}`,
    );
    expect(lockoutEvents(g, 'lockout')).toEqual([expect.objectContaining({ address: '127.7.0.7', count: 3 })]);
    await stop(g);
  });
});
