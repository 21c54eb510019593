// Who is still knocking, inspect's part, against real servers (csvlog on 14, jsonlog from 15): the
// role's failed logins from the server log, by address with the right counts, its name matched
// exactly (another role, one that differs only in case, not counted); as a non-superuser without
// the grants, or with logging_collector off, one line saying why (JSON: null and the reason) and
// inspect's exit code unchanged; with the three grants, the same operator reads it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InspectReport } from '../../src/inspect/index.js';
import { grantsSql } from '../../src/serverlog/sql.js';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, pollFor, sqlLogSettings } from '../helpers/serverlog.js';

const HBA = ['local all all trust', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n');
const PASSWORD_LINE = 2;

/** inspect's text report on mallory over `dsn` (exit 0): its lines about failed logins. */
async function failedLoginLines(dsn: string): Promise<string[]> {
  const text = await runCli(['inspect', 'mallory', '--dsn', dsn]);
  expect(text.code, text.stderr).toBe(0);
  return text.stdout.split('\n').filter((l) => l.includes('Failed logins'));
}

describe.each(MAJORS)('inspect: failed logins from the server log, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let started = 0;

  beforeAll(async () => {
    cl = await startCluster(major, sqlLogSettings(major));
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm'; CREATE ROLE "Mallory" LOGIN PASSWORD 'M'; CREATE ROLE alice LOGIN PASSWORD 'a'`);
    await cl.sql(`CREATE ROLE op LOGIN PASSWORD 'op-pw'`);
    const source = new SqlLogSource(cl.admin);
    await source.poll();
    started = Date.now();
    const tries = [...Array<string>(3).fill('127.0.0.2'), ...Array<string>(2).fill('127.0.0.3')].map((from) => ({ user: 'mallory', from }));
    tries.push(...Array.from({ length: 4 }, () => ({ user: 'Mallory', from: '127.0.0.2' })), { user: 'alice', from: '127.0.0.4' });
    for (const a of tries) expect(await attempt(cl, a)).toBe('28P01');
    await pollFor(source, tries.length); // every one of them is in the log before inspect reads it
  });
  afterAll(async () => cl?.destroyAll());

  it("--json: the role's failures by address with their counts, kinds, times and pg_hba.conf line; not another role's", async () => {
    const r = await runCli(['inspect', 'mallory', '--json', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    const doc = jsonDoc<InspectReport>(r);
    expect(doc.failedLoginsUnreadable).toBeNull();
    const f = doc.failedLogins!;
    expect(f.role).toBe('mallory');
    expect(f.count).toBe(5);
    expect(f.kinds).toEqual({ password: 5 });
    expect(f.addresses.map((a) => [a.address, a.count, a.kinds, a.hbaLines])).toEqual([
      ['127.0.0.2', 3, { password: 3 }, [PASSWORD_LINE]],
      ['127.0.0.3', 2, { password: 2 }, [PASSWORD_LINE]],
    ]);
    expect(f.addressCount).toBe(2);
    expect(f.hbaLines).toEqual([{ line: PASSWORD_LINE, count: 5 }]);
    expect(Date.parse(f.first!)).toBeGreaterThanOrEqual(started - 1000);
    expect(Date.parse(f.last!)).toBeGreaterThanOrEqual(Date.parse(f.first!));
    expect(Date.parse(f.last!)).toBeLessThanOrEqual(Date.now() + 1000);
    // how far back it reached: the whole (short) log, from its first entry, before any attempt
    expect(f.log.format).toBe(major >= 15 ? 'jsonlog' : 'csvlog');
    expect(f.log.offset).toBe(0);
    expect(Date.parse(f.log.oldest!)).toBeLessThanOrEqual(Date.parse(f.first!));
    expect(f.log.lookBackBytes).toBe(1024 * 1024);
    // the name is matched exactly: "Mallory" is another role
    const other = jsonDoc<InspectReport>(await runCli(['inspect', 'Mallory', '--json', '--dsn', cl.dsn()])).failedLogins!;
    expect(other.addresses.map((a) => [a.address, a.count])).toEqual([['127.0.0.2', 4]]);
  });

  it('text: a short section with the count, how far back the log was read, and one line per address', async () => {
    const r = await runCli(['inspect', 'mallory', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('Failed logins (5): server log read back to '));
    expect(at, r.stdout).toBeGreaterThan(0);
    expect(lines[at]).toContain(`(${major >= 15 ? 'jsonlog' : 'csvlog'}, at most the last 1 MiB)`);
    const span = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z \.\. (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d{3}Z`;
    expect(lines[at + 1]).toMatch(new RegExp(`^ {2}${span}; password 5; pg_hba\\.conf line 2 \\(5\\)$`));
    expect(lines[at + 2]).toMatch(new RegExp(`^ {2}127\\.0\\.0\\.2 +3 {2}${span} {2}password 3 {2}line 2$`));
    expect(lines[at + 3]).toMatch(new RegExp(`^ {2}127\\.0\\.0\\.3 +2 {2}${span} {2}password 2 {2}line 2$`));
    expect(lines[at + 4]).toBe('');
    expect(r.stdout).not.toContain('127.0.0.4');
  });

  it('a non-superuser without the grants: one line saying why, exit code unchanged; with the three grants it reads', async () => {
    const dsn = cl.url('op', 'op-pw');
    expect(await failedLoginLines(dsn)).toEqual([
      `Failed logins: server log not readable: permission denied for function pg_ls_logdir: read it as a superuser, or GRANT EXECUTE ON FUNCTION pg_current_logfile(text), pg_ls_logdir(), pg_read_binary_file(text, bigint, bigint, boolean) (docs/server-log.md)`,
    ]);
    const json = await runCli(['inspect', 'mallory', '--json', '--dsn', dsn]);
    expect(json.code, json.stderr).toBe(0);
    const doc = jsonDoc<InspectReport>(json);
    expect(doc.failedLogins).toBeNull();
    expect(doc.failedLoginsUnreadable).toMatch(/^permission denied for function pg_ls_logdir: .*GRANT EXECUTE/);
    for (const sql of grantsSql('op')) await cl.sql(sql);
    try {
      const granted = jsonDoc<InspectReport>(await runCli(['inspect', 'mallory', '--json', '--dsn', dsn]));
      expect(granted.failedLoginsUnreadable).toBeNull();
      expect(granted.failedLogins!.addresses.map((a) => [a.address, a.count])).toEqual([
        ['127.0.0.2', 3],
        ['127.0.0.3', 2],
      ]);
    } finally {
      for (const sql of grantsSql('op')) await cl.sql(sql.replace(/^GRANT/, 'REVOKE').replace(/ TO /, ' FROM '));
    }
  });
  it('recent means bounded: with more than 1 MiB logged since, an older failure is not read, and the output says how far back it reached', async () => {
    const source = new SqlLogSource(cl.admin);
    await source.poll();
    expect(await attempt(cl, { user: 'mallory', from: '127.0.0.6' })).toBe('28P01');
    const [old] = await pollFor(source, 1);
    await cl.sql(`DO $$ BEGIN FOR i IN 1..1200 LOOP RAISE LOG '%', repeat('x', 1000); END LOOP; END $$`); // ~1.2 MiB
    expect(await attempt(cl, { user: 'mallory', from: '127.0.0.7' })).toBe('28P01');
    await pollFor(source, 1);
    const f = jsonDoc<InspectReport>(await runCli(['inspect', 'mallory', '--json', '--dsn', cl.dsn()])).failedLogins!;
    expect(f.addresses.map((a) => [a.address, a.count])).toEqual([['127.0.0.7', 1]]);
    expect(f.log.offset).toBeGreaterThan(0);
    expect(Date.parse(f.log.oldest!)).toBeGreaterThanOrEqual(Date.parse(old!.at)); // it began after the older failure
  });
});

describe.each(MAJORS)('inspect: logging_collector off, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
  });
  afterAll(async () => cl?.destroyAll());

  it('one line saying what to turn on; JSON null with the reason; exit 0', async () => {
    expect(await failedLoginLines(cl.dsn())).toEqual([
      `Failed logins: server log not readable: logging_collector is off, so the log is not readable over SQL: set logging_collector = on (a restart) and log_destination = 'csvlog'${major >= 15 ? " (or 'jsonlog')" : ''}`,
    ]);
    const doc = jsonDoc<InspectReport>(await runCli(['inspect', 'mallory', '--json', '--dsn', cl.dsn()]));
    expect(doc.failedLogins).toBeNull();
    expect(doc.failedLoginsUnreadable).toMatch(/^logging_collector is off/);
  });
});

describe.each(MAJORS)('inspect: a stderr log, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  beforeAll(async () => {
    // stderr only, the default prefix (no %h), no log_connections: the log names no client
    cl = await startCluster(major, { logging_collector: 'on', log_destination: `'stderr'`, log_line_prefix: `'%m [%p] '` });
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
  });
  afterAll(async () => cl?.destroyAll());

  it('without %h: one line saying what to add; with %h in log_line_prefix: the failures by address', async () => {
    expect(await failedLoginLines(cl.dsn())).toEqual([
      "Failed logins: server log not readable: the log is stderr and names no client address: add %h to log_line_prefix, or set log_connections = on (18: a list holding 'receipt'), or log_destination = 'csvlog'",
    ]);
    await cl.sql(`ALTER SYSTEM SET log_line_prefix = '%m [%p] %h %q%u@%d '`);
    await cl.sql('SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 300));
    await cl.sql('SELECT pg_rotate_logfile()'); // a file with the new prefix only
    await new Promise((r) => setTimeout(r, 300));
    const source = new SqlLogSource(cl.admin, { format: 'stderr' });
    await source.poll();
    for (const from of ['127.0.0.2', '127.0.0.2', '127.0.0.3']) expect(await attempt(cl, { user: 'mallory', from })).toBe('28P01');
    await pollFor(source, 3);
    const doc = jsonDoc<InspectReport>(await runCli(['inspect', 'mallory', '--json', '--dsn', cl.dsn()]));
    expect(doc.failedLoginsUnreadable).toBeNull();
    expect(doc.failedLogins!.log.format).toBe('stderr');
    expect(doc.failedLogins!.addresses.map((a) => [a.address, a.count])).toEqual([
      ['127.0.0.2', 2],
      ['127.0.0.3', 1],
    ]);
  });
});
