// pgrevoke guard against an attacker who knows it (issue 10): a deny file poisoned through SIGHUP,
// a tick that keeps failing while connected (--max-blind), and a superuser holding pg_authid in
// ACCESS EXCLUSIVE mode, which locks every new login out: only the guard's open session gets in.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { canQuery, MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import type pg from 'pg';
import { GuardProcess, until } from '../helpers/guard.js';
import { guardTick, NO_TIMEOUTS } from '../../src/guard/sql.js';

const PW = 'pw';
/** How the tick statement's text begins, as pg_stat_activity shows the guard's backend after a tick. */
const TICK_START = guardTick({ deny: [], exclude: [], idle: NO_TIMEOUTS, idleInTransaction: NO_TIMEOUTS }, { dryRun: false }).text.slice(
  0,
  60,
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(MAJORS)('guard under attack on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  const guards: GuardProcess[] = [];

  const session = async (role: string) => {
    const c = await cl.connectAs(role, PW);
    return { c, pid: (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p };
  };
  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  /** ms until the backend is gone. */
  const goneAfter = async (pid: number, t0: number) => {
    await until(async () => !(await alive(pid)), 10_000, `pid ${pid} to end`);
    return performance.now() - t0;
  };
  const guard = (args: string[], interval = '100') => {
    const g = new GuardProcess(['--interval', interval, '--json', ...args]);
    guards.push(g);
    return g;
  };
  /** Until the guard has finished a tick that began after now: it has seen every session open now. */
  const ticked = async () => {
    const [{ t }] = (await cl.sql<{ t: string }>('SELECT clock_timestamp()::text AS t')) as [{ t: string }];
    const done = `SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND state = 'idle'
                    AND starts_with(query, $2) AND query_start > $1::timestamptz`;
    await until(async () => (await cl.sql(done, [t, TICK_START])).length > 0, 15_000, 'a guard tick');
  };

  beforeAll(async () => {
    cl = await startCluster(major);
    for (const r of ['keeper', 'nolog', 'blindvictim', 'later', 'fresh', 'bystander'])
      await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
    for (const r of ['evil', 'lurker', 'preparer']) await cl.sql(`CREATE ROLE ${r} LOGIN SUPERUSER PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE gwatch LOGIN PASSWORD '${PW}' IN ROLE pg_signal_backend, pg_read_all_stats`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-adv-'));
  });
  // a test that failed half-way must not leave its guard ending the next test's sessions
  afterEach(() => {
    for (const g of guards.splice(0)) if (g.child.exitCode === null) g.child.kill('SIGKILL');
  });
  afterAll(async () => {
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('a NUL byte arriving by SIGHUP is refused and logged; the names in force stay and NOLOGIN is still enforced within a second', async () => {
    const file = path.join(dir, 'deny-nul.txt');
    await fs.writeFile(file, 'keeper\n');
    const g = guard(['--dsn', cl.dsn(), '--deny-file', file]);
    await g.connected();
    const k1 = await session('keeper');
    await goneAfter(k1.pid, performance.now());

    await fs.writeFile(file, 'ev\0e\n');
    g.child.kill('SIGHUP');
    await until(
      () => g.stderr.includes('reload refused'),
      5000,
      () => `the refusal\n${g.stderr}`,
    );
    expect(g.stderr).toContain(
      `pgrevoke guard: error: reload refused: deny file ${file} line 1: role name "ev\\u0000e" refused: it contains a NUL byte; keeping the 1 name(s) read before ("keeper")`,
    );
    expect(g.stderr).not.toContain('added');

    const v = await session('nolog');
    const t0 = performance.now();
    await cl.sql('ALTER ROLE nolog NOLOGIN');
    expect(await goneAfter(v.pid, t0)).toBeLessThan(2000);
    const k2 = await session('keeper');
    await goneAfter(k2.pid, performance.now());
    await until(() => g.events().length === 3, 3000, 'the third kill line');
    expect(g.events().map((e) => [e.pid, e.reason])).toEqual([
      [k1.pid, 'denylisted'],
      [v.pid, 'role_nologin'],
      [k2.pid, 'denylisted'],
    ]);
    expect(g.stderr).not.toMatch(/reconnecting|tick failed/);
    expect(await g.stop()).toBe(0);
  });

  it('a tick that keeps failing while connected is logged with its SQLSTATE (not as reconnecting) and exits 3 after --max-blind', async () => {
    const g = guard(['--dsn', cl.url('gwatch', PW), '--deny', 'blindvictim', '--max-blind', '2']);
    await g.connected();
    try {
      // a hardening step that takes pg_terminate_backend away from the guard's role
      await cl.sql('REVOKE EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint) FROM PUBLIC');
      const t0 = performance.now();
      const v = await session('blindvictim');
      const code = await Promise.race([g.exited, sleep(15_000).then(() => 'still running')]);
      const took = performance.now() - t0;
      expect(code, g.stderr).toBe(3);
      expect(took).toBeGreaterThan(1900);
      expect(took).toBeLessThan(8000);
      const node = `127.0.0.1:${cl.port}`;
      expect(g.stderr).toMatch(
        new RegExp(
          `pgrevoke guard: error: ${node.replace(/\./g, '\\.')}: tick failed \\(connection kept, retrying every 100 ms; exits 3 after 2 s of this \\(--max-blind\\)\\): permission denied for function pg_terminate_backend \\[SQLSTATE 42501\\]`,
        ),
      );
      expect(g.stderr).toMatch(
        new RegExp(
          `pgrevoke: error: ${node.replace(/\./g, '\\.')}: blind for [\\d.]+ s \\(--max-blind 2\\): every tick fails: permission denied for function pg_terminate_backend \\[SQLSTATE 42501\\]`,
        ),
      );
      expect(g.stderr).not.toMatch(/connection lost|reconnecting/);
      // it was blind indeed: the denied session is still there
      expect(await alive(v.pid)).toBe(true);
    } finally {
      await cl.sql('GRANT EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint) TO PUBLIC');
    }
  });

  it('a denied superuser holding LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE is ended within two seconds of the SIGHUP', async () => {
    const file = path.join(dir, 'deny-lock.txt');
    await fs.writeFile(file, '# nobody yet\n');
    const g = guard(['--dsn', cl.dsn(), '--deny-file', file]);
    await g.connected();
    // every client this test needs is opened before the lock: no login gets in while it is held
    const evil = await session('evil');
    const later = await session('later');
    // the guard learns evil's OID from its ticks (it cannot read pg_authid under the lock)
    await ticked();
    // changing its own row first empties every session's cached copy of it (the guard's too), so
    // that pg_terminate_backend(), which looks the holder's role up, would wait on the lock as well
    await evil.c.query(`ALTER ROLE evil PASSWORD '${PW}'`);
    await evil.c.query('BEGIN');
    await evil.c.query('LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE');
    await until(
      () => g.stderr.includes('tick blocked by a lock'),
      5000,
      () => `the blocked tick\n${g.stderr}`,
    );
    expect(g.stderr).toContain(`pid ${evil.pid} (role "evil", oid `);
    expect(g.stderr).toContain('AccessExclusiveLock on pg_authid: not revoked nor denied: left alone');
    expect(await canQuery(evil.c), g.stderr).toBe(true);

    await fs.writeFile(file, 'evil\n');
    const t0 = performance.now();
    g.child.kill('SIGHUP');
    await until(
      () => g.events().some((e) => e.pid === evil.pid),
      10_000,
      () => `evil's session ended\n${g.stderr}`,
    );
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(g.events().find((e) => e.pid === evil.pid)).toMatchObject({
      event: 'kill',
      role: 'evil',
      reason: 'denylisted',
      terminated: true,
      detail: "role is on the deny list; it held AccessExclusiveLock on pg_authid, which blocked the guard's tick",
    });
    expect(await canQuery(evil.c)).toBe(false);
    // the lock went with it: logins work again, and the guard carries on with its usual ticks
    const fresh = await session('fresh');
    await until(
      () => g.stderr.includes('tick works again'),
      5000,
      () => `the tick back\n${g.stderr}`,
    );
    await cl.sql('ALTER ROLE later NOLOGIN');
    await goneAfter(later.pid, performance.now());
    expect(await canQuery(fresh.c), g.stderr).toBe(true);
    expect(g.stderr).not.toMatch(/reconnecting|connection lost/);
    expect(await g.stop()).toBe(0);
  });

  it('a denied superuser that locks pg_authid in its first round trip is ended: its OID comes from the deny list, not from a session seen', async () => {
    const file = path.join(dir, 'deny-fresh.txt');
    await fs.writeFile(file, 'lurker\n');
    const g = guard(['--dsn', cl.dsn(), '--deny-file', file, '--max-blind', '3'], '200');
    await g.connected();
    await ticked();
    const bystander = await session('bystander');
    const t0 = performance.now();
    // a fresh login that takes the lock before the guard's next tick can see its session
    const lurker = await cl.connectAs('lurker', PW);
    try {
      const res = (await lurker.query(
        `ALTER ROLE lurker PASSWORD '${PW}'; BEGIN; LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE; SELECT pg_backend_pid() AS p`,
      )) as unknown as pg.QueryResult<{ p: number }>[];
      const pid = res.at(-1)!.rows[0]!.p;
      await until(
        () => g.events().some((e) => e.pid === pid),
        10_000,
        () => `lurker's session ended\n${g.stderr}`,
      );
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(g.events().find((e) => e.pid === pid)).toMatchObject({
        event: 'kill',
        role: 'lurker',
        reason: 'denylisted',
        terminated: true,
        // the uncommitted ALTER ROLE holds its row's RowExclusiveLock too
        detail:
          "role is on the deny list; it held AccessExclusiveLock on pg_authid, RowExclusiveLock on pg_authid, which blocked the guard's tick",
      });
      expect(await canQuery(lurker)).toBe(false);
      expect(g.stderr).not.toContain('not revoked nor denied');
      // the lock went with it: logins work again, and the guard never gave up its connection
      const fresh = await session('fresh');
      await until(
        () => g.stderr.includes('tick works again'),
        5000,
        () => `the tick back\n${g.stderr}`,
      );
      expect(await canQuery(bystander.c)).toBe(true);
      expect(await canQuery(fresh.c)).toBe(true);
      expect(g.stderr).not.toMatch(/reconnecting|connection lost/);
      expect(await g.stop()).toBe(0);
    } finally {
      await lurker.end().catch(() => undefined);
    }
  });

  it("a prepared transaction of a denied role holding ACCESS EXCLUSIVE on pg_authid is rolled back, audited, and the role's session ended", async () => {
    const file = path.join(dir, 'deny-prepared.txt');
    const audit = path.join(dir, 'audit-prepared.jsonl');
    await fs.writeFile(file, '# nobody yet\n');
    const g = guard(['--dsn', cl.dsn(), '--deny-file', file, '--audit-log', audit]);
    await g.connected();
    // every client this test needs is opened before the lock; `rescue` undoes the lock if the guard does not
    const rescue = await cl.connectAs('postgres', cl.password);
    await rescue.query("SET lock_timeout = '5s'");
    const p = await session('preparer');
    await ticked();
    try {
      await p.c.query(`ALTER ROLE preparer PASSWORD '${PW}'`);
      await p.c.query('BEGIN');
      await p.c.query('LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE');
      await p.c.query("PREPARE TRANSACTION 'lockout'");
      await until(
        () => g.stderr.includes('tick blocked by a lock'),
        5000,
        () => `the blocked tick\n${g.stderr}`,
      );
      expect(g.stderr).toContain('prepared transaction "lockout" (role "preparer", oid ');
      expect(g.stderr).not.toContain('no session holds a lock');

      await fs.writeFile(file, 'preparer\n');
      const t0 = performance.now();
      g.child.kill('SIGHUP');
      await until(
        () => g.rollbacks().length > 0,
        10_000,
        () => `the rollback\n${g.stderr}`,
      );
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(g.rollbacks()).toEqual([
        expect.objectContaining({
          event: 'rollback_prepared',
          gid: 'lockout',
          role: 'preparer',
          reason: 'denylisted',
          locks: expect.stringContaining('AccessExclusiveLock on pg_authid'),
          rolledBack: true,
          dryRun: false,
        }),
      ]);
      // the lock went with it: logins work again, and the role's (idle) session is ended by the next tick
      const fresh = await session('fresh');
      await until(
        () => g.events().some((e) => e.pid === p.pid),
        5000,
        () => `preparer's session ended\n${g.stderr}`,
      );
      expect(await canQuery(fresh.c)).toBe(true);
      expect(await cl.sql('SELECT gid FROM pg_prepared_xacts')).toEqual([]);
      expect(await g.stop()).toBe(0);
      const lines = (await fs.readFile(audit, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => [l.action, l.target, l.reason, l.result])).toEqual([
        ['rollback_prepared', 'preparer', 'denylisted', 'done'],
        ['terminate', 'preparer', 'denylisted', 'done'],
      ]);
      expect(lines[0]).toMatchObject({ prepared: { gid: 'lockout' } });
    } finally {
      await rescue.query("ROLLBACK PREPARED 'lockout'").catch(() => undefined);
    }
  });
});
