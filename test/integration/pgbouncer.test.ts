// PgBouncer support against real PgBouncers (Debian's 1.18: RECONNECT; 1.24.1 built from Debian's
// source tarball: KILL_CLIENT) in front of a real embedded PostgreSQL: the role's pooled clients
// listed, then cut, and bystanders left alone. No skips: without both binaries this file fails with
// a message saying how to get them.
import type net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../src/errors.js';
import { formatVersion, parseVersion } from '../../src/pgbouncer/console.js';
import { applyPgbouncer, planPgbouncer, summarisePgbouncer } from '../../src/pgbouncer/cutoff.js';
import { inspectPgbouncer, type PgbouncerInspection } from '../../src/pgbouncer/inspect.js';
import { ident } from '../../src/pg/quote.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { PGBOUNCER_ADMIN_PASSWORD, pgbouncerBinaries, pgbouncerVersion, startPgbouncer, type TestPgbouncer } from '../helpers/pgbouncer.js';

// one major is enough for PgBouncer: the newest under test
const MAJOR = MAJORS[MAJORS.length - 1]!;
/** The compromised role: capital letters, a space, a quote and a double quote. */
const ROLE = `Mallory "M" O'Hara`;
const ROLE_PW = 'pw-mallory';
const BOB_PW = 'pw-bob';
const EVE_PW = 'pw-eve';
const SHARED_PW = 'pw-shared';
const STATS_PW = 'pw-stats';

const localPort = (c: pg.Client) => (c as unknown as { connection: { stream: net.Socket } }).connection.stream.localPort!;
const one = async <T>(c: pg.Client, sql: string) => (await c.query(sql)).rows[0] as T;
const whoAmI = (c: pg.Client) => one<{ u: string; pid: number }>(c, 'SELECT current_user AS u, pg_backend_pid() AS pid');
/** A query's outcome: the user it ran as, or the error it got. */
const attempt = (c: pg.Client) =>
  whoAmI(c).then(
    (r) => ({ ok: true as const, user: r.u }),
    (e: Error) => ({ ok: false as const, error: e.message }),
  );

function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))]);
}

const BINARIES = pgbouncerBinaries().map((bin) => ({ bin, version: pgbouncerVersion(bin) }));

describe.each(BINARIES)(`$version in front of PostgreSQL ${MAJOR}`, ({ bin, version: binaryVersion }) => {
  let cl: TestCluster;
  let bouncer: TestPgbouncer;

  beforeAll(async () => {
    cl = await startCluster(MAJOR);
    await cl.sql(`CREATE ROLE ${ident(ROLE)} LOGIN PASSWORD '${ROLE_PW}'`);
    await cl.sql(`CREATE ROLE bob LOGIN PASSWORD '${BOB_PW}'`);
    await cl.sql(`CREATE ROLE eve LOGIN PASSWORD '${EVE_PW}'`);
    await cl.sql(`CREATE ROLE app_shared LOGIN PASSWORD '${SHARED_PW}'`);
    await cl.sql('CREATE DATABASE appdb');
    bouncer = await startPgbouncer(
      cl,
      {
        databases: [
          { name: 'sales-Db', dbname: 'appdb' },
          { name: 'tx-Db', dbname: 'appdb', poolMode: 'transaction' },
          { name: 'shared', dbname: 'appdb', forceUser: { user: 'app_shared', password: SHARED_PW } },
          { name: 'kill-Me', dbname: 'appdb' },
        ],
        users: { [ROLE]: ROLE_PW, bob: BOB_PW, eve: EVE_PW, pgb_stats: STATS_PW },
        // a query waiting for a server login that PostgreSQL refuses gives up after 2 s (default 120)
        settings: { query_wait_timeout: 2, stats_users: 'pgb_stats' },
      },
      bin,
    );
  });

  afterAll(async () => {
    await bouncer?.stop();
    await cl?.destroyAll();
  });

  // filled by the first test, used by the next ones (vitest runs a file's tests in order)
  const role = { sales: [] as pg.Client[], tx: [] as pg.Client[], shared: null as unknown as pg.Client, salesPids: [] as number[] };
  const bob = { sales: [] as pg.Client[], tx: null as unknown as pg.Client, shared: null as unknown as pg.Client };
  let inspection: PgbouncerInspection;

  it("inspect lists exactly the role's pooled clients and the server connections behind them", async () => {
    for (let n = 0; n < 3; n++) {
      const c = await bouncer.connectAs(ROLE, ROLE_PW, 'sales-Db');
      role.salesPids.push((await whoAmI(c)).pid); // session pooling: this server stays linked to c
      role.sales.push(c);
    }
    for (let n = 0; n < 2; n++) {
      const c = await bouncer.connectAs(ROLE, ROLE_PW, 'tx-Db');
      await whoAmI(c); // transaction pooling: the server goes back to the pool, logged in as the role
      role.tx.push(c);
    }
    role.shared = await bouncer.connectAs(ROLE, ROLE_PW, 'shared');
    const sharedSeen = await whoAmI(role.shared);
    expect(sharedSeen.u).toBe('app_shared'); // PostgreSQL sees only the shared user
    for (let n = 0; n < 2; n++) {
      const c = await bouncer.connectAs('bob', BOB_PW, 'sales-Db');
      await whoAmI(c);
      bob.sales.push(c);
    }
    bob.tx = await bouncer.connectAs('bob', BOB_PW, 'tx-Db');
    await whoAmI(bob.tx);
    bob.shared = await bouncer.connectAs('bob', BOB_PW, 'shared');
    const bobSharedPid = (await whoAmI(bob.shared)).pid;

    inspection = await inspectPgbouncer(bouncer.consoleDsn, [ROLE]);
    expect(inspection.node).toBe(`pgbouncer 127.0.0.1:${bouncer.port}`);
    expect(inspection.version).toEqual(parseVersion(binaryVersion));

    // clients: exactly the role's six, by their source ports
    const rolePorts = [...role.sales, ...role.tx, role.shared].map(localPort).sort();
    expect(inspection.clients.map((c) => c.port).sort()).toEqual(rolePorts);
    expect(new Set(inspection.clients.map((c) => c.user))).toEqual(new Set([ROLE]));
    expect(inspection.clients.filter((c) => c.database === 'sales-Db')).toHaveLength(3);
    expect(inspection.clients.filter((c) => c.database === 'tx-Db')).toHaveLength(2);

    // servers: the three linked to the role's session clients, the role's pooled tx servers, the shared one
    // serving the role's client — and none of bob's
    const pidsOf = (db: string) =>
      inspection.servers
        .filter((s) => s.database === db)
        .map((s) => s.remotePid)
        .sort();
    expect(pidsOf('sales-Db')).toEqual([...role.salesPids].sort());
    expect(inspection.servers.filter((s) => s.database === 'sales-Db').every((s) => s.clientPtr !== null && s.user === ROLE)).toBe(true);
    const roleBackends = await cl.sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE usename = $1 ORDER BY pid', [ROLE]);
    const txPids = pidsOf('tx-Db');
    expect(txPids.length).toBeGreaterThanOrEqual(1);
    expect(roleBackends.map((r) => r.pid).sort()).toEqual([...role.salesPids, ...txPids].sort());
    expect(pidsOf('shared')).toEqual([sharedSeen.pid]);
    expect(pidsOf('shared')).not.toContain(bobSharedPid);

    expect(inspection.pools.filter((p) => p.roleClients > 0)).toEqual([
      { database: 'sales-Db', user: ROLE, sharedUser: null, sharedVia: null, poolMode: 'session', roleClients: 3, roleServers: 3 },
      {
        database: 'shared',
        user: 'app_shared',
        sharedUser: 'app_shared',
        sharedVia: 'force_user',
        poolMode: 'session',
        roleClients: 1,
        roleServers: 1,
      },
      {
        database: 'tx-Db',
        user: ROLE,
        sharedUser: null,
        sharedVia: null,
        poolMode: 'transaction',
        roleClients: 2,
        roleServers: txPids.length,
      },
    ]);
    const ids = inspection.findings.map((f) => f.id);
    expect(ids).toEqual(expect.arrayContaining(['pgbouncer.clients', 'pgbouncer.servers', 'pgbouncer.shared_user']));
    expect(ids.includes('pgbouncer.no_kill_client')).toBe(!inspection.killClient);
    const shared = inspection.findings.find((f) => f.id === 'pgbouncer.shared_user')!;
    expect(shared.detail).toContain(`auth_file ${bouncer.dir}/userlist.txt`);
    expect(inspection.databases.find((d) => d.name === 'shared')).toMatchObject({ roleClients: 1, bystanderClients: 1 });
    expect(JSON.stringify(inspection)).not.toContain(PGBOUNCER_ADMIN_PASSWORD);
  });

  it('the default plan: RECONNECT only the role’s own pool databases; no KILL; KILL_CLIENT only where the version has it', () => {
    const plan = planPgbouncer(inspection, { killPool: false });
    const runnable = plan.filter((a) => !a.skip).map((a) => a.command);
    if (inspection.killClient) {
      expect(runnable.filter((c) => c.startsWith('KILL_CLIENT '))).toHaveLength(6);
    } else {
      expect(plan[0]).toMatchObject({
        command: 'KILL_CLIENT <id>',
        skip: `KILL_CLIENT needs PgBouncer >= 1.24.0; ${formatVersion(inspection.version)} here`,
      });
      expect(runnable).toEqual(['RECONNECT "sales-Db"', 'RECONNECT "tx-Db"']);
      expect(plan.find((a) => a.command === 'KILL "shared"')!.skip).toMatch(/^--pgbouncer-kill-pool not given/);
    }
    expect(runnable.some((c) => c.startsWith('KILL '))).toBe(false);
  });

  it('NOLOGIN alone does not cut a pooled role: its clients keep running queries on pooled server connections', async () => {
    await cl.sql(`ALTER ROLE ${ident(ROLE)} NOLOGIN`);
    for (const c of [...role.sales, ...role.tx]) expect(await attempt(c)).toEqual({ ok: true, user: ROLE });
  });

  it('cutoff: the plan + pg_terminate_backend leave the role’s pooled clients unable to query, bystanders untouched; the shared pool is exposure', async () => {
    const plan = planPgbouncer(inspection, { killPool: false });
    const results = await applyPgbouncer(bouncer.consoleDsn, plan, false);
    expect(results.filter((r) => r.status !== 'skipped').every((r) => r.status === 'done')).toBe(true);
    expect(results.map((r) => r.command)).toContain('RECONNECT "tx-Db"');

    // RECONNECT closed the pooled server connections logged in as the role: the next query needs a new
    // login, which PostgreSQL refuses (NOLOGIN); the query waits and fails after query_wait_timeout
    if (inspection.killClient) {
      // KILL_CLIENT dropped each of the role's six clients at once, session-pooled ones (linked to a
      // server) and the one in the shared pool included, before any backend was terminated
      expect(results.filter((r) => r.kind === 'kill_client' && r.status === 'done')).toHaveLength(6);
      expect((await Promise.all([...role.sales, ...role.tx, role.shared].map(attempt))).map((o) => o.ok)).toEqual(Array(6).fill(false));
    } else {
      expect((await Promise.all(role.tx.map(attempt))).map((o) => o.ok)).toEqual([false, false]);
      // session pooling: a client keeps its linked server connection until it leaves; RECONNECT cannot
      // touch it, which is why the backends are terminated as well
      for (const c of role.sales) expect(await attempt(c)).toEqual({ ok: true, user: ROLE });
    }
    await cl.sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [ROLE]);

    const roleOutcomes = await Promise.all([...role.sales, ...role.tx].map(attempt));
    expect(roleOutcomes.map((o) => o.ok)).toEqual([false, false, false, false, false]);
    // a fresh login through PgBouncer: PgBouncer admits it, PostgreSQL refuses the server login
    const fresh = await bouncer
      .connectAs(ROLE, ROLE_PW, 'sales-Db')
      .then(attempt)
      .catch((e: Error) => ({ ok: false as const, error: e.message }));
    expect(fresh.ok).toBe(false);

    // bystanders: every one of bob's pooled clients still works, in the same databases
    for (const c of [...bob.sales, bob.tx, bob.shared]) expect((await attempt(c)).ok).toBe(true);
    expect(await attempt(bob.tx)).toEqual({ ok: true, user: 'bob' });
    // the shared-user pool: PostgreSQL never saw the role. KILL_CLIENT (1.24+) drops the role's client
    // there too, RECONNECT cannot; either way PgBouncer still admits the role and logs it in as
    // app_shared: that is the exposure reported, and only PgBouncer's own auth can close it
    expect(await attempt(role.shared)).toEqual(
      inspection.killClient ? expect.objectContaining({ ok: false }) : { ok: true, user: 'app_shared' },
    );
    const again = await bouncer.connectAs(ROLE, ROLE_PW, 'shared');
    expect(await attempt(again)).toEqual({ ok: true, user: 'app_shared' });
    await again.end();
    const summary = summarisePgbouncer(inspection, results);
    expect(summary.exposed).toBe(true);
    expect(summary.notDone.join('\n')).toMatch(
      /database shared: the pool logs in to PostgreSQL as shared user app_shared.*auth_file.*RELOAD/,
    );

    // PgBouncer drops the refused and terminated clients as it notices: poll briefly for the end state
    // (what is left: the role's client in the shared pool, unless KILL_CLIENT dropped it)
    const left = inspection.killClient ? [] : ['shared'];
    let after = await inspectPgbouncer(bouncer.consoleDsn, [ROLE]);
    for (const end = Date.now() + 5_000; after.clients.length > left.length && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 100));
      after = await inspectPgbouncer(bouncer.consoleDsn, [ROLE]);
    }
    expect(after.clients.map((c) => c.database)).toEqual(left);
    expect(after.servers.filter((s) => s.user === ROLE)).toEqual([]);
    // a client still in the shared pool is exposure; with none, the forced-user entry is still a way in
    expect(after.findings.map((f) => f.id)).toContain(inspection.killClient ? 'pgbouncer.shared_user_possible' : 'pgbouncer.shared_user');
    expect(after.findings.map((f) => f.id)).not.toContain('pgbouncer.servers');
  });

  it('killPool: KILL drops the role’s clients AND every bystander of that database (why it is opt-in); RESUME lets new clients in', async () => {
    const eve = [await bouncer.connectAs('eve', EVE_PW, 'kill-Me'), await bouncer.connectAs('eve', EVE_PW, 'kill-Me')];
    for (const c of eve) await whoAmI(c);
    const bystander = await bouncer.connectAs('bob', BOB_PW, 'kill-Me');
    await whoAmI(bystander);

    const i = await inspectPgbouncer(bouncer.consoleDsn, ['eve']);
    expect(i.clients).toHaveLength(2);
    expect(planPgbouncer(i, { killPool: false }).some((a) => a.kind === 'kill' && !a.skip)).toBe(false);
    const plan = planPgbouncer(i, { killPool: true });
    // KILL covers the clients there, so no KILL_CLIENT either, whatever the version
    expect(plan.filter((a) => !a.skip).map((a) => a.command)).toEqual(['KILL "kill-Me"', 'RESUME "kill-Me"']);
    expect(plan.find((a) => a.kind === 'kill')!.reason).toContain('the role’s 2 clients and 1 other client (bystanders)');
    const results = await applyPgbouncer(bouncer.consoleDsn, plan, false);
    expect(results.filter((r) => r.kind === 'kill' || r.kind === 'resume').map((r) => r.status)).toEqual(['done', 'done']);

    for (const c of eve) expect((await attempt(c)).ok).toBe(false);
    expect((await attempt(bystander)).ok).toBe(false); // the bystander in kill-Me was dropped too
    expect(await attempt(bob.sales[0]!)).toEqual({ ok: true, user: 'bob' }); // other databases untouched
    // not left paused: a new client gets in at once (a paused database would make it wait)
    const back = await within(5_000, bouncer.connectAs('bob', BOB_PW, 'kill-Me'), 'a new client of kill-Me (still paused?)');
    expect(await attempt(back)).toEqual({ ok: true, user: 'bob' });
    const dbs = await (await bouncer.console()).query(`SHOW DATABASES`);
    expect((dbs.rows as { name: string; paused: number }[]).find((r) => r.name === 'kill-Me')!.paused).toBe(0);
  });

  it('console errors are readable and never show the password', async () => {
    const wrong = bouncer.dsnFor('pgb_admin', 'Wrong-Secret-xyz', 'pgbouncer');
    const err = await inspectPgbouncer(wrong, [ROLE]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgrevokeError);
    expect((err as PgrevokeError).message).toContain(`pgbouncer 127.0.0.1:${bouncer.port}`);
    expect((err as PgrevokeError).message).not.toContain('Wrong-Secret-xyz');

    // a stats_users login may SHOW but not RECONNECT: the result says so, with the fix
    const stats = bouncer.dsnFor('pgb_stats', STATS_PW, 'pgbouncer');
    const i = await inspectPgbouncer(stats, ['bob']);
    const plan = planPgbouncer(i, { killPool: false });
    expect(plan.map((a) => a.command)).toContain('RECONNECT "sales-Db"');
    const results = await applyPgbouncer(stats, plan, false);
    const failed = results.find((r) => r.command === 'RECONNECT "sales-Db"')!;
    expect(failed).toMatchObject({ status: 'failed', sqlstate: '08P01' });
    expect(failed.detail).toMatch(/admin access needed/);
    expect(failed.hint).toMatch(/admin_users/);
    expect(JSON.stringify(results)).not.toContain(STATS_PW);
    expect(summarisePgbouncer(i, results).exposed).toBe(true);
  });
});
