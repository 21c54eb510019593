// What a cheaper tick must still catch (issue 15): changes that make a session need ending without
// any catalog change at that moment, or without the set of sessions looking any different. A guard
// that skipped its work on ticks where "nothing changed" would miss each of these (a guard that did
// was tried, and missed all but the rename: bench/guard-notes.md); the guard runs its one statement
// over every session each tick. Also: more sessions to end at once than the tick reads one by one.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { canQuery, MAJORS, parkLogin, startCluster, type TestCluster } from '../helpers/cluster.js';
import { GuardProcess, until } from '../helpers/guard.js';
import { READ_ONE_BY_ONE } from '../../src/guard/sql.js';

const PW = 'pw';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(MAJORS)('guard ticks on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const guards: GuardProcess[] = [];
  const parked: pg.Client[] = [];

  const guard = (args: string[]) => {
    const g = new GuardProcess(['--json', '--dsn', cl.dsn(), ...args]);
    guards.push(g);
    return g;
  };
  const session = async (role: string) => {
    const c = await cl.connectAs(role, PW);
    return { c, pid: (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p };
  };
  const visible = async (pid: number) =>
    (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND usesysid IS NOT NULL', [pid])).length === 1;
  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  // the guard may end a session within a tick of its showing, before a poll here sees it shown
  const shownOrGone = async (pid: number) => (await visible(pid)) || !(await alive(pid));
  /** ms from t0 until the backend is gone. */
  const goneAfter = async (pid: number, t0: number, ms = 10_000) => {
    await until(async () => !(await alive(pid)), ms, `pid ${pid} to end`);
    return performance.now() - t0;
  };
  const killOf = (g: GuardProcess, pid: number) => g.events().find((e) => e.pid === pid);
  /**
   * The guard's kill of a parked login that has ended, or null: the login's role check can also run
   * after post_auth_delay and see the NOLOGIN itself (18 does when the backend takes the catalog
   * change in first), and then no session got in for the guard to end. Nothing escaped either way.
   */
  const killWithin = async (g: GuardProcess, pid: number) => {
    await until(() => killOf(g, pid) !== undefined, 1500, 'the kill event').catch(() => undefined);
    return killOf(g, pid) ?? null;
  };

  beforeAll(async () => {
    cl = await startCluster(major);
    for (const r of ['latecomer', 'swapper', 'other', 'crowd', 'expiring', 'renamer', 'unsignalled'])
      await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
    // may read every session but not signal them: it learns to when granted pg_signal_backend
    await cl.sql(`CREATE ROLE gw LOGIN PASSWORD '${PW}' IN ROLE pg_read_all_stats`);
  });
  afterEach(async () => {
    for (const g of guards.splice(0)) if (g.child.exitCode === null) g.child.kill('SIGKILL');
    await Promise.all(parked.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('a login that passed its role check before NOLOGIN, and shows up after it (post-authentication window): ended once it shows', async () => {
    const g = guard([]);
    await g.connected();
    const p = await parkLogin(cl, 'latecomer', PW, 2);
    parked.push(p.client);
    // the only catalog change comes while the session cannot be seen yet
    await cl.sql('ALTER ROLE latecomer NOLOGIN');
    await until(() => shownOrGone(p.pid), 10_000, 'the parked login to show in pg_stat_activity (or be ended)');
    const t0 = performance.now();
    expect(await goneAfter(p.pid, t0)).toBeLessThan(2000);
    const kill = await killWithin(g, p.pid);
    if (kill) expect(kill).toMatchObject({ role: 'latecomer', reason: 'role_nologin', terminated: true });
  });

  it('the same: when it shows, another session ends at once, so that the count and the newest backend_start look unchanged', async () => {
    const g = guard([]);
    await g.connected();
    const leaving = await session('other');
    const p = await parkLogin(cl, 'swapper', PW, 2);
    parked.push(p.client);
    // opened after the parked login forked: the newest backend_start, before and after the swap
    const newest = await session('other');
    await cl.sql('ALTER ROLE swapper NOLOGIN');
    await until(() => shownOrGone(p.pid), 10_000, 'the parked login to show in pg_stat_activity (or be ended)');
    await leaving.c.end();
    const t0 = performance.now();
    expect(await goneAfter(p.pid, t0)).toBeLessThan(2000);
    const kill = await killWithin(g, p.pid);
    if (kill) expect(kill).toMatchObject({ role: 'swapper', reason: 'role_nologin' });
    expect(await canQuery(newest.c)).toBe(true);
  });

  it(`more sessions to end than READ_ONE_BY_ONE (${READ_ONE_BY_ONE}) at once: every one ended and reported once`, async () => {
    const g = guard([]);
    await g.connected();
    const many = await Promise.all(Array.from({ length: READ_ONE_BY_ONE + 8 }, () => session('crowd')));
    const few = await Promise.all(Array.from({ length: 3 }, () => session('other')));
    await cl.sql('ALTER ROLE crowd NOLOGIN');
    for (const s of many) await goneAfter(s.pid, performance.now());
    await until(() => many.every((s) => killOf(g, s.pid) !== undefined), 3000, 'a kill event for each');
    expect(g.events().filter((e) => e.role === 'crowd')).toHaveLength(many.length);
    expect(g.events().every((e) => e.reason === 'role_nologin' && e.terminated)).toBe(true);
    for (const s of few) expect(await canQuery(s.c)).toBe(true);
  });

  it('VALID UNTIL reached while connected: ended when the time passes, though nothing changes then', async () => {
    const g = guard([]);
    await g.connected();
    const s = await session('expiring');
    const [{ at }] = (await cl.sql<{ at: string }>(`SELECT (clock_timestamp() + interval '2 seconds')::text AS at`)) as [{ at: string }];
    await cl.sql(`ALTER ROLE expiring VALID UNTIL '${at}'`);
    await sleep(1000);
    // the change itself ended nothing: the role was still valid
    expect(await canQuery(s.c)).toBe(true);
    const expiresIn = Date.parse(at) - Date.now();
    const t0 = performance.now();
    const took = await goneAfter(s.pid, t0);
    expect(took).toBeGreaterThan(expiresIn - 500);
    expect(took).toBeLessThan(expiresIn + 1500);
    await until(() => killOf(g, s.pid) !== undefined, 3000, 'the kill event');
    expect(killOf(g, s.pid)).toMatchObject({ role: 'expiring', reason: 'role_expired' });
  });

  it('a role renamed to a denied name: its open sessions end as deny-listed', async () => {
    const g = guard(['--deny', 'renamed_denied']);
    await g.connected();
    const s = await session('renamer');
    await sleep(300);
    expect(await canQuery(s.c)).toBe(true);
    await cl.sql('ALTER ROLE renamer RENAME TO renamed_denied');
    const t0 = performance.now();
    expect(await goneAfter(s.pid, t0)).toBeLessThan(2000);
    await until(() => killOf(g, s.pid) !== undefined, 3000, 'the kill event');
    expect(killOf(g, s.pid)).toMatchObject({ role: 'renamed_denied', reason: 'denylisted', event: 'kill' });
  });

  it("a session it may not end is ended once the guard's role is granted pg_signal_backend (a membership change)", async () => {
    const g = new GuardProcess(['--json', '--dsn', cl.url('gw', PW), '--deny', 'unsignalled']);
    guards.push(g);
    await g.connected();
    const s = await session('unsignalled');
    await until(
      () => g.events().some((e) => e.pid === s.pid && e.event === 'denied'),
      5000,
      () => `the denied event\n${g.stderr}`,
    );
    await sleep(300);
    expect(await canQuery(s.c)).toBe(true);
    try {
      await cl.sql('GRANT pg_signal_backend TO gw');
      const t0 = performance.now();
      expect(await goneAfter(s.pid, t0)).toBeLessThan(2000);
      await until(() => g.events().some((e) => e.pid === s.pid && e.event === 'kill'), 3000, 'the kill event');
    } finally {
      await cl.sql('REVOKE pg_signal_backend FROM gw');
    }
  });
});
