// The races cutoff exists for (postgres-facts.md sections 1, 3, 4): an attacker reconnecting as fast
// as it can while holding row locks, and a backend parked in the post-authentication window.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenBackendsSql } from '../../src/checks/hidden-backends.js';
import { runCli, jsonDoc } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

interface Json {
  [k: string]: unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(MAJORS)('cutoff races on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-storm-test-'));
  const cutoff = (args: string[]) => runCli(['cutoff', ...args, '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
  const oidOf = async (name: string) =>
    Number((await cl.sql<{ oid: string }>('SELECT oid::text AS oid FROM pg_roles WHERE rolname = $1', [name]))[0]!.oid);
  const backendsOf = async (oid: number) =>
    (await cl.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = $1', [oid]))[0]!.n;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile(
      'pg_hba.conf',
      ['local all all trust', 'host all postgres 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n',
    );
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await cl.sql('INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 300) g');
    await cl.sql('CREATE TABLE loot (v text)');
    await cl.sql('GRANT ALL ON accounts, loot TO PUBLIC');
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('(a) a reconnect storm of 250 clients, some holding row locks: exit 0, then no backend of the role and no successful query for 1 s', async () => {
    await cl.sql(`CREATE ROLE storm LOGIN PASSWORD 'storm-pw'`);
    const oid = await oidOf('storm');
    const CLIENTS = 250;
    const HOLDERS = 25;
    const CHURNERS = 50; // log in, one query, log out, again: logins are in flight when NOLOGIN commits
    let stop = false;
    let successes = 0;
    let logins = 0;
    const locked = new Set<number>();
    const attacker = async (i: number) => {
      while (!stop) {
        // most over the socket (trust: the fastest reconnects), every tenth over TCP with a password
        const c =
          i % 10 === 0
            ? new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'storm', password: 'storm-pw', database: 'postgres' })
            : new pg.Client({ host: cl.socketDir, port: cl.port, user: 'storm', database: 'postgres' });
        c.on('error', () => undefined);
        try {
          await c.connect();
          logins++;
          if (i < HOLDERS) {
            await c.query('BEGIN');
            await c.query('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [i + 1]);
            locked.add(i);
            successes++;
            while (!stop) {
              await c.query('SELECT 1');
              successes++;
              await sleep(10);
            }
          } else if (i < HOLDERS + CHURNERS) {
            await c.query('SELECT 1');
            successes++;
          } else {
            while (!stop) {
              await c.query('SELECT 1');
              successes++;
            }
          }
        } catch {
          /* terminated or refused: reconnect at once */
        } finally {
          await c.end().catch(() => undefined);
        }
      }
    };
    const loops = Array.from({ length: CLIENTS }, (_, i) => attacker(i));
    try {
      await waitFor(
        async () => logins >= CLIENTS && locked.size === HOLDERS && (await backendsOf(oid)) >= (CLIENTS - CHURNERS) * 0.8,
        60_000,
        'the storm to be connected',
      );
      const report = path.join(tmp, 'storm.json');
      const r = await cutoff(['storm', '--yes', '--json', '--report', report]);
      const after = successes;
      expect(r.code, r.stderr + r.stdout.slice(0, 2000)).toBe(0);
      const d = jsonDoc<Json>(r);
      expect(d.exitCode).toBe(0);
      expect((d.terminated as Json[]).length).toBeGreaterThanOrEqual((CLIENTS - CHURNERS) * 0.8);
      expect(((d.snapshot as Json).locks as Json[]).some((l) => l.locktype === 'tuple' || l.locktype === 'transactionid')).toBe(true);
      expect(d.verification).toEqual([expect.objectContaining({ role: 'storm', verdict: 'contained' })]);
      // NOLOGIN committed before anything was terminated: no backend forked after the commit got in
      const starts = (d.terminated as Json[]).map((t) => t.backendStart).filter((x): x is string => typeof x === 'string');
      expect(starts.length).toBeGreaterThan(0);
      const late = await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM unnest($1::timestamptz[]) AS s WHERE s >= $2::timestamptz`, [
        starts,
        d.committedAt,
      ]);
      expect(late).toEqual([{ n: 0 }]);
      // for a whole second: no backend of the role, and the attacker gets nothing done
      const end = Date.now() + 1000;
      let polls = 0;
      while (Date.now() < end) {
        expect(await backendsOf(oid)).toBe(0);
        polls++;
        await sleep(25);
      }
      expect(polls).toBeGreaterThanOrEqual(3);
      expect(successes).toBe(after);
      // the row locks went with the sessions
      const admin = await cl.connectAs('postgres', cl.password);
      await admin.query('BEGIN');
      expect((await admin.query('SELECT id FROM accounts WHERE id <= $1 FOR UPDATE NOWAIT', [HOLDERS])).rowCount).toBe(HOLDERS);
      await admin.query('ROLLBACK');
    } finally {
      stop = true;
      await Promise.all(loops);
    }
  });

  it('(b) a backend in post_auth_delay never runs its INSERT; without the settle loop the same attack gets through', async () => {
    await cl.sql(`CREATE ROLE sleeper LOGIN PASSWORD 'sleeper-pw'`);
    await cl.sql(`CREATE ROLE sleeper_ctl LOGIN PASSWORD 'sleeper-pw'`);
    const outcome: Record<string, string> = {};
    const attack = (user: string) => {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: cl.port,
        user,
        password: 'sleeper-pw',
        database: 'postgres',
        options: '-c post_auth_delay=5',
      });
      c.on('error', () => undefined);
      void c
        .connect()
        .then(() => c.query(`INSERT INTO loot VALUES ('escaped ' || current_user)`))
        .then(
          () => (outcome[user] = 'inserted'),
          (e: Error) => (outcome[user] = `failed: ${e.message}`),
        )
        .finally(() => void c.end().catch(() => undefined));
    };
    const hiddenPids = async () => (await cl.sql<{ pid: number }>(hiddenBackendsSql(major))).map((x) => x.pid);

    attack('sleeper');
    const [pid] = await waitFor(
      async () => {
        const h = await hiddenPids();
        return h.length ? h : null;
      },
      10_000,
      'the hidden backend',
    );
    const t0 = Date.now();
    const r = await cutoff(['sleeper', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    const settle = d.settle as Json;
    expect(settle.suspects).toEqual([
      expect.objectContaining({ pid, resolution: 'terminated', via: major >= 18 ? 'starting' : 'virtualxid' }),
    ]);
    expect(d.terminated).toEqual([expect.objectContaining({ pid, hidden: true, signalled: true })]);
    expect(Date.now() - t0).toBeLessThan(5000); // it did not just wait for the delay to pass

    // control: the same attack against a playbook without the settle loop
    const pb = path.join(tmp, 'no-settle.yaml');
    writeFileSync(pb, 'name: no-settle\nreason: compromise\nsteps:\n  - action: contain\n');
    attack('sleeper_ctl');
    await waitFor(async () => ((await hiddenPids()).length ? true : null), 10_000, 'the control hidden backend');
    const ctl = await cutoff(['sleeper_ctl', '--yes', '--json', '--playbook', pb]);
    expect(ctl.code, ctl.stderr).toBe(0);
    expect(await cl.sql(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'sleeper_ctl'`)).toEqual([{ rolcanlogin: false }]);

    await sleep(7000);
    expect(outcome.sleeper).toMatch(/^failed/);
    expect(outcome.sleeper_ctl).toBe('inserted'); // NOLOGIN alone does not stop a backend past the login check
    expect(await cl.sql(`SELECT v FROM loot ORDER BY v`)).toEqual([{ v: 'escaped sleeper_ctl' }]);
  });
});
