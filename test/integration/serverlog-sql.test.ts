// The SQL log source against real servers: every kind of failed login, from several 127.0.0.0/8
// addresses and with hostile names, read back from csvlog (every major), jsonlog (15+) and stderr
// with Debian's prefix (the address paired from log_connections), through pg_read_binary_file;
// a rotation mid-stream loses nothing and doubles nothing; a role with only the three grants reads it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import type { LogFormat } from '../../src/serverlog/record.js';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { grantsSql } from '../../src/serverlog/sql.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, fields, pollFor, type Attempt } from '../helpers/serverlog.js';

const HBA = [
  'local all all trust',
  'host all rejme 127.0.0.0/8 reject',
  'host all all 127.0.0.0/25 scram-sha-256',
  'host all all 127.0.1.0/24 trust',
].join('\n');
// the line numbers the DETAIL names
const PASSWORD_LINE = 3;

const HOSTILE = 'x" from host "10.0.0.1';
const NEWLINE = 'ünï "q"\nline two';
const SPLITS = 'alice", database "postgres", no encryption';

/** Each attempt and the failure it must give (at, pid and message checked apart). */
const CASES: Array<{ a: Attempt; want: ReturnType<typeof fields>; hbaLine: number | null }> = [
  { a: { user: 'alice', from: '127.0.0.1' }, want: f('alice', '127.0.0.1', 'password', '28P01'), hbaLine: PASSWORD_LINE },
  { a: { user: 'alice', from: '127.0.0.5' }, want: f('alice', '127.0.0.5', 'password', '28P01'), hbaLine: PASSWORD_LINE },
  { a: { user: 'ghost', from: '127.0.0.6' }, want: f('ghost', '127.0.0.6', 'role_missing', '28P01'), hbaLine: PASSWORD_LINE },
  { a: { user: HOSTILE, from: '127.0.0.7' }, want: f(HOSTILE, '127.0.0.7', 'role_missing', '28P01'), hbaLine: PASSWORD_LINE },
  { a: { user: NEWLINE, from: '127.0.0.8' }, want: f(NEWLINE, '127.0.0.8', 'role_missing', '28P01'), hbaLine: PASSWORD_LINE },
  { a: { user: 'rejme', from: '127.0.0.5' }, want: f('rejme', '127.0.0.5', 'hba_reject', '28000'), hbaLine: null },
  { a: { user: 'nol', password: 'nol-pw', from: '127.0.0.9' }, want: f('nol', '127.0.0.9', 'nologin', '28000'), hbaLine: null },
  { a: { user: 'alice', from: '127.0.0.200' }, want: f('alice', '127.0.0.200', 'no_hba_entry', '28000'), hbaLine: null },
  { a: { user: SPLITS, from: '127.0.0.201' }, want: f(SPLITS, '127.0.0.201', 'no_hba_entry', '28000'), hbaLine: null },
  { a: { user: 'ghost2', from: '127.0.1.5' }, want: f('ghost2', '127.0.1.5', 'role_missing', '28000'), hbaLine: null },
  { a: { user: 'ghost3', socket: true }, want: f('ghost3', null, 'role_missing', '28000'), hbaLine: null },
];

function f(user: string, address: string | null, kind: AuthFailure['kind'], sqlstate: AuthFailure['sqlstate']): ReturnType<typeof fields> {
  return { user, address, database: 'postgres', kind, sqlstate };
}

/**
 * The cases a format can read: a stderr prefix does not escape %u, so a name with a newline breaks
 * the line it is in (no reading of it can be trusted, stderr.ts); csvlog and jsonlog quote it.
 */
function readable(format: LogFormat): typeof CASES {
  return format === 'stderr' ? CASES.filter((c) => !c.a.user.includes('\n')) : CASES;
}

/** The failures CASES give, each checked on everything but at/pid/message; those checked for shape. */
function expectCases(got: AuthFailure[], format: LogFormat, started: number): void {
  const cases = readable(format);
  expect(got.map(fields)).toEqual(cases.map((c) => c.want));
  expect(got.map((g) => g.hbaLine)).toEqual(cases.map((c) => c.hbaLine));
  for (const g of got) {
    const at = Date.parse(g.at);
    expect(g.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
    expect(at).toBeGreaterThanOrEqual(started - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 1000);
  }
  expect(new Set(got.map((g) => g.pid)).size).toBe(got.length);
  expect(got[0]!.message).toBe('password authentication failed for user "alice"');
  expect(got[3]!.message).toBe(`password authentication failed for user "${HOSTILE}"`);
}

async function runCases(cl: TestCluster): Promise<void> {
  for (const c of CASES) expect(await attempt(cl, c.a)).not.toBe('allow');
}

function settings(major: number): Record<string, string | number> {
  return {
    logging_collector: 'on',
    log_destination: major >= 15 ? `'stderr,csvlog,jsonlog'` : `'stderr,csvlog'`,
    // 18 made it a list; up to 17 a boolean
    log_connections: major >= 18 ? `'receipt,authentication'` : 'on',
    log_line_prefix: `'%m [%p] %q%u@%d '`,
    log_filename: `'postgresql-%Y-%m-%d_%H%M%S'`,
  };
}

describe.each(MAJORS)('server log over SQL, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const formats: LogFormat[] = major >= 15 ? ['csvlog', 'jsonlog', 'stderr'] : ['csvlog', 'stderr'];

  beforeAll(async () => {
    cl = await startCluster(major, settings(major));
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(
      `CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; CREATE ROLE nol NOLOGIN PASSWORD 'nol-pw'; CREATE ROLE rejme LOGIN PASSWORD 'x'`,
    );
  });
  afterAll(async () => cl?.destroyAll());

  it.each(formats)('%s: every failure, its user, address, database, kind and pg_hba.conf line', async (format) => {
    const source = new SqlLogSource(cl.admin, { format });
    expect(await source.poll()).toEqual([]); // the first poll only finds the end
    const started = Date.now();
    await runCases(cl);
    const got = await pollFor(source, readable(format).length);
    expectCases(got, format, started);
    expect(source.format).toBe(format);
    expect(source.warnings).toEqual([]);
  });

  it('one round trip per poll, idle or with a failure to read (the listing, the identity and the chunk in one)', async () => {
    const queries: string[] = [];
    const counted = { query: (text: string, values?: unknown[]) => (queries.push(text), cl.admin.query(text, values)) } as typeof cl.admin;
    const source = new SqlLogSource(counted, { format: 'csvlog' });
    await source.poll();
    queries.length = 0;
    await source.poll();
    expect(queries).toHaveLength(1);
    await attempt(cl, { user: 'alice', from: '127.0.0.60' });
    queries.length = 0;
    const got = await pollFor(source, 1);
    expect(got.map((g) => g.address)).toEqual(['127.0.0.60']);
    expect(queries.length).toBeLessThanOrEqual(4); // pollFor polls until it has it, then twice more: one query each
    expect(queries.every((q) => q.includes('pg_current_logfile'))).toBe(true);
  });

  it.each(formats)('%s: a rotation mid-stream, failures on both sides: none lost, none twice; a saved cursor resumes', async (format) => {
    const source = new SqlLogSource(cl.admin, { format });
    await source.poll();
    const before = source.cursor()!;
    for (const from of ['127.0.0.11', '127.0.0.12']) await attempt(cl, { user: 'alice', from });
    const got = await pollFor(source, 2); // read in the old file, before the rotation
    for (const from of ['127.0.0.13', '127.0.0.14']) await attempt(cl, { user: 'alice', from });
    const file = await currentFile(cl, format);
    // pg_rotate_logfile() names the new file by the second: wait for a new second
    await new Promise((r) => setTimeout(r, 1100));
    await cl.sql('SELECT pg_rotate_logfile()');
    await waitForNewFile(cl, format, file);
    for (const from of ['127.0.0.15', '127.0.0.16']) await attempt(cl, { user: 'alice', from });
    got.push(...(await pollFor(source, 4)));
    const all = await pollFor(new SqlLogSource(cl.admin, { format, cursor: before }), 6);
    expect(got.map((g) => g.address)).toEqual(['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15', '127.0.0.16']);
    expect(got).toHaveLength(6);
    expect(source.stats.rotations).toBe(1);
    expect(source.cursor()!.file).not.toBe(before.file);
    // a new source handed the first cursor reads the same six again, across the rotation, exactly once
    expect(all.map((g) => g.address)).toEqual(got.map((g) => g.address));
  });
});

async function currentFile(cl: TestCluster, format: LogFormat): Promise<string> {
  return (await cl.sql<{ file: string }>(`SELECT pg_current_logfile($1) AS file`, [format]))[0]!.file;
}

async function waitForNewFile(cl: TestCluster, format: LogFormat, old: string): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end;) {
    const file = await currentFile(cl, format);
    if (file !== old) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('pg_rotate_logfile() did not switch files');
}

describe.each(MAJORS)('server log over SQL without superuser, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  beforeAll(async () => {
    cl = await startCluster(major, settings(major));
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw'`);
  });
  afterAll(async () => cl?.destroyAll());

  it('reads with EXECUTE on pg_current_logfile, pg_ls_logdir and pg_read_binary_file, and not without', async () => {
    const watcher = await cl.connectAs('watcher', 'watcher-pw');
    await expect(new SqlLogSource(watcher, { format: 'csvlog' }).poll()).rejects.toThrow(/permission denied/);
    for (const sql of grantsSql('watcher')) await cl.sql(sql);
    const source = new SqlLogSource(watcher, { format: 'csvlog' });
    await source.poll();
    await attempt(cl, { user: 'mallory', from: '127.0.0.42' });
    const got = await pollFor(source, 1);
    expect(got.map(fields)).toEqual([f('mallory', '127.0.0.42', 'role_missing', '28P01')]);
  });
});
