// Records restore must not take on trust. A role with pg_write_server_files writes files as the
// server's OS user (COPY ... TO): run as that user, pgrevoke's state directory is within its reach,
// and a record dated in the future would be the latest one. A --report file can name any record,
// one already restored included: the link is followed only to the record that closed with it.
import { spawn } from 'node:child_process';
import { chownSync, mkdtempSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverUser } from '../../src/embedded/cluster.js';
import { BASE_ENV, BIN, runCli, type CliResult } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const FUTURE = '2099-01-01T00:00:00.000Z';

/** The red team's forge-record.mjs: a record of `role`'s cutoff, dated FUTURE, whose one sql step "undoes" itself with `inverse`. */
function forged(genuine: string, role: string, inverse: string): string[] {
  const begin = JSON.parse(readFileSync(genuine, 'utf8').split('\n')[0]!) as {
    startedAt: string;
    nodes: { node: string; plan: { steps: unknown[] } }[];
  };
  begin.startedAt = FUTURE;
  const node = begin.nodes[0]!;
  node.plan.steps.push({
    index: 99,
    node: node.node,
    skip: null,
    action: 'sql',
    database: null,
    role,
    sql: [],
    reason: 'x',
    inverse: [inverse],
  });
  const step = {
    type: 'step',
    at: FUTURE,
    node: node.node,
    step: { index: 99, action: 'sql', status: 'done', detail: null, database: null, role, executed: [], durationMs: 1 },
  };
  return [JSON.stringify(begin), JSON.stringify(step)];
}

/** The CLI as the OS user the server runs as (this user when the tests do not run as root). */
function runAsServerUser(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const user = serverUser();
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...BASE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.each(MAJORS)('records restore must not trust, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const base = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-planted-'));
  const state = path.join(base, 'state');
  const env = { PGREVOKE_STATE_DIR: state };
  const cli = (args: string[]) => runCli([...args, '--dsn', cl.dsn()], env, { timeoutMs: 60_000 });
  const attrs = async (name: string) =>
    (
      await cl.sql<{ rolcanlogin: boolean; rolsuper: boolean }>('SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1', [name])
    )[0]!;
  const recordOf = (r: CliResult) => /recorded in (\S+\.jsonl)/.exec(r.stderr)?.[1];

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE writer LOGIN PASSWORD 'pw-w'`);
    await cl.sql(`GRANT pg_write_server_files TO writer`);
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('a record dated in the future is never the latest: restore names it and takes the real one', async () => {
    await cl.sql(`CREATE ROLE dave LOGIN`);
    const cut = await cli(['cutoff', 'dave', '--yes']);
    expect(cut.code, cut.stderr).toBe(0);
    const planted = path.join(state, 'records', '2099-01-01T000000000Z-000000000000.jsonl');
    writeFileSync(planted, forged(recordOf(cut)!, 'dave', 'ALTER ROLE writer SUPERUSER').join('\n') + '\n', { mode: 0o600 });
    const r = await cli(['restore', 'dave', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`pgrevoke: ignoring the record ${planted}: it says it started at "${FUTURE}", after this host's clock`);
    expect(r.stderr).toContain(`restoring from the record of the cutoff of`);
    expect(r.stderr).toContain(recordOf(cut)!);
    expect(await attrs('writer')).toEqual({ rolcanlogin: true, rolsuper: false });
    expect((await attrs('dave')).rolcanlogin).toBe(true);
    // run as root, not as the server's OS user: no such warning
    expect(r.stderr).not.toContain('runs as the OS user');
    await fs.rm(planted);
  });

  it('--from a report whose record is dated in the future is refused, nothing changed', async () => {
    await cl.sql(`CREATE ROLE erin LOGIN`);
    const report = path.join(base, 'erin.json');
    const cut = await cli(['cutoff', 'erin', '--yes', '--report', report]);
    expect(cut.code, cut.stderr).toBe(0);
    const record = recordOf(cut)!;
    const lines = readFileSync(record, 'utf8').split('\n');
    lines[0] = JSON.stringify({ ...(JSON.parse(lines[0]!) as object), startedAt: FUTURE });
    writeFileSync(record, lines.join('\n'));
    const r = await cli(['restore', 'erin', '--from', report, '--yes']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`refusing the record ${record}: it says it started at "${FUTURE}", after this host's clock`);
    expect((await attrs('erin')).rolcanlogin).toBe(false);
  });

  it('--from a report naming a record it did not close (one already restored) is refused; the real report is still followed', async () => {
    await cl.sql(`CREATE ROLE frank LOGIN; CREATE ROLE gina LOGIN`);
    const real = path.join(base, 'frank.json');
    expect((await cli(['cutoff', 'frank', '--yes', '--report', real])).code).toBe(0);
    expect((await cli(['restore', 'frank', '--from', real, '--yes'])).code).toBe(0);
    // a DBA disables frank again, on purpose
    await cl.sql(`ALTER ROLE frank NOLOGIN`);
    const other = path.join(base, 'gina.json');
    expect((await cli(['cutoff', 'gina', '--yes', '--report', other])).code).toBe(0);
    // the red team's forged-link.json: another cutoff's report, linked to frank's used record
    const link = (JSON.parse(readFileSync(real, 'utf8')) as { record: string }).record;
    const forgedLink = path.join(base, 'forged-link.json');
    writeFileSync(forgedLink, JSON.stringify({ ...(JSON.parse(readFileSync(other, 'utf8')) as object), record: link }));
    const r = await cli(['restore', 'frank', '--from', forgedLink, '--yes']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      `pgrevoke: error: ${forgedLink} names the record ${link}, but that record did not close with this report (it differs beyond its "record" field); refusing to follow the link, nothing was changed`,
    );
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^pgrevoke: error: /);
    expect((await attrs('frank')).rolcanlogin).toBe(false);
    // a copy of the real report, keys in another order, is the same report
    const doc = JSON.parse(readFileSync(real, 'utf8')) as Record<string, unknown>;
    const reordered = path.join(base, 'frank-reordered.json');
    writeFileSync(reordered, JSON.stringify(Object.fromEntries(Object.entries(doc).reverse())));
    const again = await cli(['restore', 'frank', '--from', reordered, '--dry-run']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('names its record: restoring from that, not from the file');
  });

  it("as the server's OS user: a record planted with COPY ... TO by a role with pg_write_server_files is not taken, and restore and history say whose reach the state directory is in", async () => {
    const user = serverUser();
    const home = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-as-server-user-'));
    if (user) chownSync(home, user.uid, user.gid);
    const theirs = { HOME: home, PGREVOKE_STATE_DIR: path.join(home, 'state') };
    await cl.sql(`CREATE ROLE dave2 LOGIN`);
    const cut = await runAsServerUser(['cutoff', 'dave2', '--yes', '--dsn', cl.dsn()], theirs);
    expect(cut.code, cut.stderr).toBe(0);
    const planted = path.join(home, 'state', 'records', '2099-01-01T000000000Z-000000000000.jsonl');
    const w = await cl.connectAs('writer', 'pw-w');
    await w.query('CREATE TEMP TABLE l (n int, t text)');
    for (const [i, t] of forged(recordOf(cut)!, 'dave2', 'ALTER ROLE writer SUPERUSER').entries())
      await w.query('INSERT INTO l VALUES ($1, $2)', [i, t]);
    await w.query(`COPY (SELECT t FROM l ORDER BY n) TO '${planted}' WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`);
    expect(readFileSync(planted, 'utf8')).toContain(FUTURE);

    const r = await runAsServerUser(['restore', 'dave2', '--yes', '--dsn', cl.dsn()], theirs);
    expect(r.code, r.stderr).toBe(0);
    const uid = user?.uid ?? process.getuid!();
    const warning = `pgrevoke: warning: this runs as the OS user the PostgreSQL server runs as (uid ${uid}): any database superuser or member of pg_write_server_files can write files as this user, ${theirs.PGREVOKE_STATE_DIR} included`;
    expect(r.stderr).toContain(warning);
    expect(r.stderr.split(warning)).toHaveLength(2);
    expect(r.stderr).toContain(`pgrevoke: ignoring the record ${planted}`);
    expect(await attrs('writer')).toEqual({ rolcanlogin: true, rolsuper: false });
    expect((await attrs('dave2')).rolcanlogin).toBe(true);

    // history connects nowhere: over the server's socket, its owner says it
    const h = await runAsServerUser(['history', '-h', cl.socketDir, '-p', String(cl.port)], theirs);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stderr).toContain(warning);
    const tcp = await runAsServerUser(['history', '-h', '127.0.0.1', '-p', String(cl.port)], theirs);
    expect(tcp.stderr).not.toContain('pgrevoke: warning:');
  });
});
