// guard's lockout has a connection of its own per node (issue 16): a stalled lockout statement
// does not queue the tick behind it. The guard reaches the server through a TCP relay that, once a
// connection sends pg_reload_conf() (the lockout's reload after its pg_hba.conf edit), withholds the
// server's answers on that connection: the statement hangs. Meanwhile a session of a denied role
// is still ended by the next tick, and once the relay lets the answer through the lockout holds. A
// statement that never answers times out (query_timeout): its connection is dropped and the next
// pass, on a fresh one, reloads and checks pg_hba_file_rules before it records (and says) the lockout in force.
import net from 'node:net';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { canQuery, MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { HARDENED_HBA, loginFrom, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead, lockoutEvents } from './guard-lockout-helpers.js';

/**
 * A relay to `port` that holds back the server's answers on a connection once it has sent
 * `trigger`, until release(); `times`: on that many connections at most (then it relays as is).
 */
function stallingRelay(port: number, trigger: string, times = Infinity) {
  const held: (() => void)[] = [];
  let stalled = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    let stall = false;
    client.on('data', (d) => {
      if (!stall && stalled < times && d.toString('latin1').includes(trigger)) {
        stall = true;
        stalled++;
        upstream.pause();
        held.push(() => upstream.resume());
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return {
    listen: () =>
      new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))),
    stalled: () => stalled,
    release: () => held.splice(0).forEach((f) => f()),
    /** Connections open now. */
    connections: () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(MAJORS)('guard --lockout-after with a stalled lockout statement on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  let guard: CliRun | null = null;
  let relay: ReturnType<typeof stallingRelay> | null = null;

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    await cl.sql(`CREATE ROLE mallory LOGIN`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-stall-'));
  });

  afterAll(async () => {
    guard?.signal('SIGKILL');
    relay?.release();
    await relay?.close();
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('while the lockout reload hangs, the tick still ends a denied session; the lockout holds once it answers', async () => {
    const r = (relay = stallingRelay(cl.port, 'pg_reload_conf()'));
    const port = await r.listen();
    const dsn = `postgresql://postgres:${encodeURIComponent(cl.password)}@127.0.0.1:${port}/postgres`;
    const env = { PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) };
    const args = ['guard', '--dsn', dsn, '--json', '--deny', 'mallory', '--lockout-after', '3', '--hba-file', cl.hbaFile];
    const g = (guard = startCli(args, env));
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    await firstLogRead(cl, g);

    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await until(
      () => r.stalled() > 0,
      15_000,
      () => `the lockout's reload to be sent\n${g.stderr()}`,
    );

    // mallory over the Unix socket (local trust): denied, so the next tick ends it
    const m = new pg.Client({ host: cl.socketDir, port: cl.port, user: 'mallory', database: 'postgres' });
    m.on('error', () => undefined);
    await m.connect();
    await until(
      async () => !(await canQuery(m)),
      3000,
      () => `mallory's session to be ended while the reload hangs\n${g.stderr()}`,
    );
    await m.end().catch(() => undefined);
    expect(r.stalled()).toBe(1);
    expect(lockoutEvents(g, 'lockout')).toEqual([]);

    r.release();
    await until(
      () => lockoutEvents(g, 'lockout').length === 1,
      15_000,
      () => `the lockout event\n${g.stdout()}\n${g.stderr()}`,
    );
    expect(await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')).toBe('28000');
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  });

  it('a lockout statement that never answers times out: that connection is dropped, the next pass opens another and the lockout holds', async () => {
    await relay?.close();
    await cl.writeDataFile('pg_hba.conf', HARDENED_HBA);
    await cl.sql('SELECT pg_reload_conf()');
    const r = (relay = stallingRelay(cl.port, 'pg_reload_conf()', 1));
    const port = await r.listen();
    const dsn = `postgresql://postgres:${encodeURIComponent(cl.password)}@127.0.0.1:${port}/postgres`;
    const env = { PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) };
    const g = (guard = startCli(['guard', '--dsn', dsn, '--json', '--lockout-after', '3', '--hba-file', cl.hbaFile], env));
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    await firstLogRead(cl, g);
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.9.0.9' })).toBe('28P01');
    await until(
      () => r.stalled() === 1,
      15_000,
      () => `the lockout's reload to be sent\n${g.stderr()}`,
    );
    // the client-side limit is max(10 s, 5 x interval): the stalled statement fails then (the reload itself had run), and the
    // next pass, on a fresh connection, finds the lines in the file and records the lockout in force there
    await until(
      () => lockoutEvents(g, 'failed').some((e) => /timeout/i.test(e.detail)),
      30_000,
      () => `the timed-out reload said\n${g.stdout()}\n${g.stderr()}`,
    );
    const store = path.join(env.PGREVOKE_STATE_DIR, 'lockouts.json');
    await until(
      async () => (JSON.parse(await fs.readFile(store, 'utf8')) as { lockouts: { applied: string[] }[] }).lockouts[0]?.applied.length === 1,
      15_000,
      () => `the lockout recorded in force\n${g.stdout()}\n${g.stderr()}`,
    );
    expect(await loginFrom(cl, '127.9.0.9', 'alice', 'pw-alice')).toBe('28000');
    expect(r.stalled()).toBe(1);
    // recorded only once verified as the first pass would have: a reload on the fresh connection and the
    // rules checked in pg_hba_file_rules, then said (and audited) as any lockout taking effect
    const said = lockoutEvents(g, 'lockout');
    expect(said.map((e) => [e.role, e.address])).toEqual([['alice', '127.9.0.9']]);
    expect(said[0]!.detail).toMatch(/reloaded, checked in pg_hba_file_rules/);
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  });
});
