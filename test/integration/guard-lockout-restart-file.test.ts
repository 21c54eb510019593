// guard --server-log FILE across a guard restart (issue 16), Debian's layout (no collector, stderr
// to one file, '%m [%p] %q%u@%d ', log_connections): while guard is down, logrotate's copytruncate
// copies the log away and empties it, and three wrong passwords are logged into the emptied file.
// The saved position is past the file's new end, in a file whose first bytes changed: the reader
// resumes as it does for a truncation (the copy's rest, then the file from 0), and the pair is locked.
// And logins in flight across the restart: their `connection received` lines (the only place the
// address is, without %h) were logged before the saved position, their failures after it; from
// the file, and over SQL from a collector's stderr file.

/** alice's password login from `from`, held at the server's password request (`password` method): `fail()` answers it wrongly. */
async function heldLogin(port: number, from: string): Promise<{ fail(): Promise<void> }> {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress: from });
  sock.on('error', () => undefined);
  await once(sock, 'connect');
  const params = Buffer.from('user\0alice\0database\0postgres\0\0');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(196608, 4);
  sock.write(Buffer.concat([head, params]));
  let got = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const on = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // AuthenticationCleartextPassword: 'R', length 8, code 3
      if (got.length >= 9 && got[0] === 0x52 && got.readInt32BE(5) === 3) {
        sock.off('data', on);
        resolve();
      }
    };
    sock.on('data', on);
  });
  return {
    fail: async () => {
      const pw = Buffer.from('wrong-password\0');
      const m = Buffer.alloc(5);
      m[0] = 0x70;
      m.writeInt32BE(4 + pw.length, 1);
      const closed = once(sock, 'close');
      sock.write(Buffer.concat([m, pw]));
      await closed;
    },
  };
}
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { HARDENED_HBA, loginFrom } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { lockoutEvents } from './guard-lockout-helpers.js';

/**
 * Three password logins from 127.10.0.10 held at the password request while a guard runs, the guard
 * stopped (its position past their `connection received` lines), the wrong passwords sent, a guard
 * started again: the pair is locked, from the address the connection lines gave.
 */
async function inFlightAcrossRestart(cl: TestCluster, dir: string, running: CliRun[], serverLog: boolean): Promise<void> {
  await cl.writeDataFile(
    'pg_hba.conf',
    HARDENED_HBA.replace('local all all trust\n', 'local all all trust\nhost all alice 127.10.0.0/16 password\n'),
  );
  await cl.sql('SELECT pg_reload_conf()');
  const logFile = serverLog
    ? cl.logFile
    : path.join(cl.dataDir, (await cl.sql<{ f: string }>(`SELECT pg_current_logfile('stderr') AS f`))[0]!.f);
  const env = { PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) };
  const args = ['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', '3', '--hba-file', cl.hbaFile];
  if (serverLog) args.push('--server-log', cl.logFile);
  const g1 = startCli(args, env);
  running.push(g1);
  await until(
    async () =>
      (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND query LIKE '%hba_file%'`)).length > 0,
    15_000,
    () => `the guard's first lockout pass\n${g1.stderr()}`,
  );
  const held = [];
  for (let i = 0; i < 3; i++) held.push(await heldLogin(cl.port, '127.10.0.10'));
  const received = async () => {
    const log = await fs.readFile(logFile, 'utf8');
    const at = log.lastIndexOf('connection received: host=127.10.0.10');
    return at < 0 ? -1 : Buffer.byteLength(log.slice(0, log.indexOf('\n', at) + 1));
  };
  await until(async () => (await received()) > 0, 10_000, 'the connection lines');
  // a few of the guard's reads after them (every 400 ms): its position at stop is past them
  await new Promise((r) => setTimeout(r, 1500));
  g1.signal('SIGTERM');
  expect(await g1.exited).toBe(0);
  const [name] = await fs.readdir(path.join(env.PGREVOKE_STATE_DIR, 'log-cursors'));
  const saved = JSON.parse(await fs.readFile(path.join(env.PGREVOKE_STATE_DIR, 'log-cursors', name!), 'utf8')) as {
    cursor: { file: string; offset: number };
  };
  expect(path.resolve(cl.dataDir, saved.cursor.file)).toBe(logFile);
  expect(saved.cursor.offset).toBeGreaterThanOrEqual(await received());

  for (const h of held) await h.fail();
  const g2 = startCli(args, env);
  running.push(g2);
  await until(
    () => lockoutEvents(g2, 'lockout').length === 1,
    15_000,
    () => `the lockout event\n${g2.stdout()}\n${g2.stderr()}`,
  );
  expect(lockoutEvents(g2, 'lockout')[0]).toMatchObject({ role: 'alice', address: '127.10.0.10', count: 3 });
  g2.signal('SIGTERM');
  expect(await g2.exited).toBe(0);
}

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

  it('logins in flight across the restart: their failures after it count, from the address logged before it', () =>
    inFlightAcrossRestart(cl, dir, running, true));
});

describe.each(MAJORS)('guard --lockout-after over SQL, stderr without %%h, across a restart, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  const running: CliRun[] = [];

  beforeAll(async () => {
    cl = await startCluster(major, {
      logging_collector: 'on',
      log_destination: `'stderr'`,
      log_filename: `'postgresql-%Y-%m-%d_%H%M%S.log'`,
      log_line_prefix: `'%m [%p] %q%u@%d '`,
      log_connections: major >= 18 ? `'receipt'` : 'on',
    });
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw-alice'`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-restart-stderr-'));
  });
  afterAll(async () => {
    for (const g of running) g.signal('SIGKILL');
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('logins in flight across the restart: their failures after it count, from the address logged before it', () =>
    inFlightAcrossRestart(cl, dir, running, false));
});
