// guard --server-log FILE across a guard restart (issue 16), Debian's layout (no collector, stderr
// to one file, '%m [%p] %q%u@%d ', log_connections): while guard is down, logrotate's copytruncate
// copies the log away and empties it, and three wrong passwords are logged into the emptied file.
// The saved position is past the file's new end, in a file whose first bytes changed: the reader
// resumes as it does for a truncation (the copy's rest, then the file from 0), and the pair is locked.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { HARDENED_HBA, loginFrom } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { lockoutEvents } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --lockout-after --server-log across a restart and copytruncate, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  const running: CliRun[] = [];

  beforeAll(async () => {
    cl = await startCluster(major, { log_line_prefix: `'%m [%p] %q%u@%d '`, log_connections: major >= 18 ? `'receipt'` : 'on' });
    await cl.writeDataFile('pg_hba.conf', HARDENED_HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw-alice'`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-restart-file-'));
  });
  afterAll(async () => {
    for (const g of running) g.signal('SIGKILL');
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('failures logged into the truncated file while guard was down lock the pair at its restart', async () => {
    const env = { PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) };
    const args = ['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', '3', '--server-log', cl.logFile, '--hba-file', cl.hbaFile];
    const start = async () => {
      const g = startCli(args, env);
      running.push(g);
      await until(
        () => /connected as/.test(g.stderr()),
        15_000,
        () => `guard connected\n${g.stderr()}`,
      );
      return g;
    };
    const g1 = await start();
    // the first pass (the engine reads the node's facts, hba_file among them) follows the first read of the file's end
    await until(
      async () =>
        (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND query LIKE '%hba_file%'`)).length > 0,
      15_000,
      () => `the guard's first lockout pass\n${g1.stderr()}`,
    );
    g1.signal('SIGTERM');
    expect(await g1.exited).toBe(0);
    const cursors = await fs.readdir(path.join(env.PGREVOKE_STATE_DIR, 'log-cursors'));
    expect(cursors).toHaveLength(1);

    // logrotate's copytruncate, then the failures (the server appends: they land at the start of the emptied file)
    await fs.copyFile(cl.logFile, `${cl.logFile}.1`);
    await fs.truncate(cl.logFile, 0);
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.8.0.8' })).toBe('28P01');

    const g2 = await start();
    await until(
      async () => (await loginFrom(cl, '127.8.0.8', 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from 127.8.0.8 to be refused\n${g2.stdout()}\n${g2.stderr()}`,
    );
    await until(
      () => lockoutEvents(g2, 'lockout').length === 1,
      10_000,
      () => `the lockout event\n${g2.stdout()}`,
    );
    expect(lockoutEvents(g2, 'lockout')[0]).toMatchObject({ role: 'alice', address: '127.8.0.8', count: 3 });
    g2.signal('SIGTERM');
    expect(await g2.exited).toBe(0);
  });
});
