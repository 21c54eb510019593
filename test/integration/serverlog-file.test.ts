// The file log source against real servers laid out as Debian runs them: logging_collector off,
// stderr to one file (here pg_ctl -l, as pg_ctlcluster does), log_line_prefix '%m [%p] %q%u@%d '
// with no %h, so the address comes from log_connections' `connection received` line of the same
// pid. Also: a client forging whole log lines through a newline in its user and database names;
// logrotate's copytruncate (Debian's) and a rename with the collector reopening the file.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLogSource } from '../../src/serverlog/file-source.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, fields, pollFor } from '../helpers/serverlog.js';

const HBA = ['local all all trust', 'host all rejme 127.0.0.0/8 reject', 'host all all 127.0.0.0/25 scram-sha-256'].join('\n');
const DEBIAN = `'%m [%p] %q%u@%d '`;

function receipt(major: number): string {
  // 18 made log_connections a list: `receipt` is the part that logs `connection received`
  return major >= 18 ? `'receipt'` : 'on';
}

async function prepare(cl: TestCluster): Promise<void> {
  await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
  await cl.sql('SELECT pg_reload_conf()');
  await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; CREATE ROLE nol NOLOGIN PASSWORD 'nol-pw'; CREATE ROLE rejme LOGIN`);
}

/** The log's time for now, as %m writes it with log_timezone UTC (the embedded servers' zone here). */
function stamp(): string {
  return new Date().toISOString().replace('T', ' ').replace('Z', ' UTC');
}

describe.each(MAJORS)('server log file, Debian layout, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  beforeAll(async () => {
    cl = await startCluster(major, { log_line_prefix: DEBIAN, log_connections: receipt(major) });
    await prepare(cl);
  });
  afterAll(async () => cl?.destroyAll());

  it('each failure with the address paired from `connection received`, the user as given, the time', async () => {
    const source = new FileLogSource({ file: cl.logFile });
    expect(await source.poll()).toEqual([]);
    expect(source.format).toBe('stderr');
    const started = Date.now();
    const hostile = 'x" from host "10.0.0.1';
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.21' })).toBe('28P01');
    expect(await attempt(cl, { user: hostile, from: '127.0.0.22' })).toBe('28P01');
    expect(await attempt(cl, { user: 'rejme', from: '127.0.0.23' })).toBe('28000');
    expect(await attempt(cl, { user: 'nol', password: 'nol-pw', from: '127.0.0.24' })).toBe('28000');
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.200' })).toBe('28000');
    const got = await pollFor(source, 5);
    expect(got.map(fields)).toEqual([
      { user: 'alice', address: '127.0.0.21', database: 'postgres', kind: 'password', sqlstate: '28P01' },
      { user: hostile, address: '127.0.0.22', database: 'postgres', kind: 'role_missing', sqlstate: '28P01' },
      { user: 'rejme', address: '127.0.0.23', database: 'postgres', kind: 'hba_reject', sqlstate: '28000' },
      { user: 'nol', address: '127.0.0.24', database: 'postgres', kind: 'nologin', sqlstate: '28000' },
      { user: 'alice', address: '127.0.0.200', database: 'postgres', kind: 'no_hba_entry', sqlstate: '28000' },
    ]);
    expect(got.map((g) => g.hbaLine)).toEqual([3, 3, null, null, null]);
    for (const g of got) expect(Date.parse(g.at)).toBeGreaterThanOrEqual(started - 1000);
  });

  it('a client that forges log lines through newlines in its user and database names gets nothing counted', async () => {
    const source = new FileLogSource({ file: cl.logFile });
    await source.poll();
    // a `connection received` for a pid of the client's choosing, from an address of its choosing ...
    const receiptUser = `\n${stamp()} [77777] [unknown]`;
    const receiptDb = `[unknown] LOG:  connection received: host=10.9.9.9 port=1\n`;
    // ... and a NOLOGIN failure of alice, a real role, for that pid: a lockout of alice at 10.9.9.9
    const fatalUser = `\n${stamp()} [77777] alice`;
    const fatalDb = `x FATAL:  role "alice" is not permitted to log in\n`;
    for (const s of [receiptUser, receiptDb, fatalUser, fatalDb]) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(63);
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.31' })).toBe('28P01');
    expect(await attempt(cl, { user: receiptUser, database: receiptDb, from: '127.0.0.32' })).toBe('28P01');
    expect(await attempt(cl, { user: fatalUser, database: fatalDb, from: '127.0.0.32' })).toBe('28P01');
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.33' })).toBe('28P01');
    const got = await pollFor(source, 2);
    // the forged lines are in the log, whole, as lines of their own
    const log = await fs.readFile(cl.logFile, 'utf8');
    expect(log).toContain(`\n${fatalUser.slice(1)}@${fatalDb.slice(0, -1)}\n`);
    expect(log).toContain(`\n${receiptUser.slice(1)}@${receiptDb.slice(0, -1)}\n`);
    // the real failures on both sides are counted, the forged one is not (nor the forger's own, unreadable)
    expect(got.map(fields)).toEqual([
      { user: 'alice', address: '127.0.0.31', database: 'postgres', kind: 'password', sqlstate: '28P01' },
      { user: 'alice', address: '127.0.0.33', database: 'postgres', kind: 'password', sqlstate: '28P01' },
    ]);
    expect(source.tailStats().suspect).toBeGreaterThan(0);
  });

  it("logrotate's copytruncate: what was written before the copy is read from the copy, after it from the start", async () => {
    const source = new FileLogSource({ file: cl.logFile });
    await source.poll();
    for (const from of ['127.0.0.41', '127.0.0.42']) await attempt(cl, { user: 'alice', from });
    const got = await pollFor(source, 2);
    for (const from of ['127.0.0.43', '127.0.0.44']) await attempt(cl, { user: 'alice', from });
    // copytruncate: copy, then truncate in place (the server appends, O_APPEND, so it writes at the new end)
    await fs.copyFile(cl.logFile, `${cl.logFile}.1`);
    await fs.truncate(cl.logFile, 0);
    for (const from of ['127.0.0.45', '127.0.0.46']) await attempt(cl, { user: 'alice', from });
    got.push(...(await pollFor(source, 4)));
    expect(got.map((g) => g.address)).toEqual(['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44', '127.0.0.45', '127.0.0.46']);
    expect(source.stats.truncations).toBe(1);
    await fs.rm(`${cl.logFile}.1`);
  });
});

describe.each(MAJORS)('server log file, renamed and reopened by the collector, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let file: string;
  beforeAll(async () => {
    cl = await startCluster(major, {
      logging_collector: 'on',
      log_destination: `'stderr'`,
      log_filename: `'postgresql.log'`,
      log_line_prefix: `'%m [%p] %h %q%u@%d '`,
    });
    await prepare(cl);
    file = path.join(cl.dataDir, 'log', 'postgresql.log');
  });
  afterAll(async () => cl?.destroyAll());

  it('the old file is read to its end, then the new one from its start; a saved cursor resumes across it', async () => {
    const source = new FileLogSource({ file, prefix: '%m [%p] %h %q%u@%d ' });
    await source.poll();
    const before = source.cursor()!;
    for (const from of ['127.0.0.51', '127.0.0.52']) await attempt(cl, { user: 'alice', from });
    const got = await pollFor(source, 2);
    for (const from of ['127.0.0.53', '127.0.0.54']) await attempt(cl, { user: 'alice', from });
    await fs.rename(file, `${file}.1`);
    await cl.sql('SELECT pg_rotate_logfile()');
    for (const from of ['127.0.0.55', '127.0.0.56']) await attempt(cl, { user: 'alice', from });
    await waitForFile(file);
    got.push(...(await pollFor(source, 4)));
    const want = ['127.0.0.51', '127.0.0.52', '127.0.0.53', '127.0.0.54', '127.0.0.55', '127.0.0.56'];
    expect(got.map((g) => g.address)).toEqual(want);
    expect(source.stats.rotations).toBe(1);
    // a new run from the first cursor finds the rotated file beside the new one by its inode
    const resumed = await pollFor(new FileLogSource({ file, prefix: '%m [%p] %h %q%u@%d ', cursor: before }), 6);
    expect(resumed.map((g) => g.address)).toEqual(want);
  });
});

async function waitForFile(file: string): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end;) {
    if (await fs.stat(file).catch(() => null)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} did not come back`);
}
