// guard --on-membership-revoked's pass (src/guard/membership-holdover.ts) driven against real
// servers: the session that ran SET ROLE admin before REVOKE admin FROM alice is ended at the next
// pass, with every other session of alice (none can be told from it); a bystander of another role
// and a member that lost nothing are not; chains, the 16+ SET option, dry runs, permissions.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endMembershipHoldovers, type HoldoverOptions } from '../../src/guard/membership-holdover.js';
import type { MembershipSnapshot } from '../../src/guard/membership.js';
import { canQuery, MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';

const PW = 'pw';
const OPERATOR = { dbUser: 'postgres', osUser: 'tester', host: 'testhost' };

describe.each(MAJORS)('guard --on-membership-revoked on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  /** The guard's own connection, as the guard holds one per node. */
  let guard: pg.Client;
  let snapshot: MembershipSnapshot | null = null;
  const opts = (over: Partial<HoldoverOptions> = {}): HoldoverOptions => ({
    major,
    dryRun: false,
    exclude: [],
    node: `127.0.0.1:${cl.port}`,
    operator: OPERATOR,
    ...over,
  });
  /** One pass, as a guard tick would run it; the snapshot carried to the next. */
  const pass = async (over: Partial<HoldoverOptions> = {}, client: pg.Client = guard) => {
    const r = await endMembershipHoldovers(client, snapshot, opts(over));
    snapshot = r.snapshot;
    return r;
  };
  const session = async (role: string, setRole?: string) => {
    const c = await cl.connectAs(role, PW, 'postgres', { application_name: `${role}-app` });
    if (setRole) await c.query(`SET ROLE ${setRole}`);
    const pid = (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    return { c, pid };
  };
  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  const gone = (pid: number) => until(async () => !(await alive(pid)), 5000, `pid ${pid} to end`);
  const currentUser = async (c: pg.Client) => (await c.query<{ u: string }>('SELECT current_user::text AS u')).rows[0]!.u;
  const oid = async (role: string) =>
    Number((await cl.sql<{ o: string }>(`SELECT oid::int8::text AS o FROM pg_roles WHERE rolname = $1`, [role]))[0]!.o);
  const login = async (...roles: string[]) => {
    for (const r of roles) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
  };

  beforeAll(async () => {
    cl = await startCluster(major);
    guard = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'postgres', password: cl.password, database: 'postgres' });
    await guard.connect();
    await cl.sql('CREATE ROLE admin NOLOGIN');
    await cl.sql('CREATE SCHEMA adm AUTHORIZATION admin');
    await cl.sql('CREATE TABLE adm.secret AS SELECT 1 AS x');
    await cl.sql('ALTER TABLE adm.secret OWNER TO admin');
    // the first pass only looks: nothing has been lost yet
    const first = await pass();
    expect(first).toMatchObject({ lost: [], kills: [], statements: 1 });
  });
  afterAll(async () => {
    await guard?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('REVOKE admin FROM alice: the SET ROLE session is ended at the next pass, with alice`s other session; bob (kept admin) and a bystander are not', async () => {
    await login('alice', 'bob', 'stranger');
    await cl.sql('CREATE ROLE other NOLOGIN');
    await cl.sql('GRANT admin TO alice, bob');
    await cl.sql('GRANT other TO stranger');
    const held = await session('alice', 'admin');
    const plain = await session('alice');
    const kept = await session('bob', 'admin');
    const bystander = await session('stranger', 'other');
    expect(await pass()).toMatchObject({ lost: [], kills: [] });
    // unchanged: one short statement, the same snapshot
    const before = snapshot;
    expect(await pass()).toMatchObject({ lost: [], kills: [], statements: 1 });
    expect(snapshot).toBe(before);

    await cl.sql('REVOKE admin FROM alice');
    // the holdover PostgreSQL leaves (membership-holdover.test.ts)
    expect(await currentUser(held.c)).toBe('admin');

    const r = await pass();
    expect(r.statements).toBe(2);
    const aliceOid = await oid('alice');
    expect(r.lost).toEqual([
      { member: String(aliceOid), memberName: 'alice', role: String(await oid('admin')), roleName: 'admin', via: [] },
    ]);
    expect(r.kills.map((k) => k.pid).sort()).toEqual([held.pid, plain.pid].sort());
    expect(r.denied).toEqual([]);
    const k = r.kills.find((x) => x.pid === held.pid)!;
    expect(k).toMatchObject({
      node: `127.0.0.1:${cl.port}`,
      role: 'alice',
      usesysid: aliceOid,
      database: 'postgres',
      application: 'alice-app',
      backendType: 'client backend',
      reason: 'membership_revoked',
      terminated: true,
      dryRun: false,
    });
    expect(k.detail).toContain('lost membership in "admin"');
    expect(k.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(r.audit).toHaveLength(2);
    expect(r.audit.find((a) => a.session.pid === held.pid)).toMatchObject({
      operator: OPERATOR,
      target: 'alice',
      action: 'terminate',
      reason: 'membership_revoked',
      result: 'done',
      detail: k.detail,
      session: { pid: held.pid, user: 'alice', usesysid: aliceOid, application: 'alice-app' },
    });
    await gone(held.pid);
    await gone(plain.pid);
    expect(await canQuery(held.c)).toBe(false);
    expect(await currentUser(kept.c)).toBe('admin');
    expect(await canQuery(bystander.c)).toBe(true);
    // reported once: the next pass sees nothing new
    expect(await pass()).toMatchObject({ lost: [], kills: [], statements: 1 });
    // a new session of alice cannot become admin: nothing left to end
    const again = await session('alice');
    expect(await again.c.query('SET ROLE admin').catch((e: { code: string }) => e.code)).toBe('42501');
  });

  it('through a chain: REVOKE admin FROM mid ends the sessions of every member of mid, naming mid; a member that still has admin directly keeps them', async () => {
    await login('carol', 'dave', 'erin');
    await cl.sql('CREATE ROLE mid NOLOGIN');
    await cl.sql('GRANT mid TO carol, dave, erin');
    await cl.sql('GRANT admin TO mid, erin');
    await pass();
    const c = await session('carol', 'admin');
    const d = await session('dave', 'mid');
    const e = await session('erin', 'admin');

    await cl.sql('REVOKE admin FROM mid');
    const r = await pass();
    expect(r.lost.map((l) => [l.memberName, l.roleName, l.via.map((v) => v.name)])).toEqual([
      ['carol', 'admin', ['mid']],
      ['dave', 'admin', ['mid']],
      ['mid', 'admin', []],
    ]);
    expect(r.kills.map((k) => k.pid).sort()).toEqual([c.pid, d.pid].sort());
    expect(r.kills.find((k) => k.pid === c.pid)!.detail).toContain('lost membership in "admin" (through "mid")');
    await gone(c.pid);
    await gone(d.pid);
    expect(await currentUser(e.c)).toBe('admin');

    // REVOKE mid FROM erin: erin loses mid, not admin (granted directly)
    const e2 = await session('erin', 'mid');
    await cl.sql('REVOKE mid FROM erin');
    const r2 = await pass();
    expect(r2.lost.map((l) => [l.memberName, l.roleName])).toEqual([['erin', 'mid']]);
    expect(r2.kills.map((k) => k.pid).sort()).toEqual([e.pid, e2.pid].sort());
  });

  it(
    major >= 16
      ? 'REVOKE SET OPTION ends the SET ROLE session; REVOKE INHERIT OPTION of a SET FALSE membership ends nothing'
      : 'before 16 every membership allows SET ROLE: a NOINHERIT member`s REVOKE ends its sessions',
    async () => {
      await login('fred', 'gina');
      if (major < 16) {
        await cl.sql('ALTER ROLE fred NOINHERIT');
        await cl.sql('GRANT admin TO fred');
        await pass();
        const f = await session('fred', 'admin');
        await cl.sql('REVOKE admin FROM fred');
        expect((await pass()).kills.map((k) => k.pid)).toEqual([f.pid]);
        return;
      }
      await cl.sql('GRANT admin TO fred WITH INHERIT FALSE, SET TRUE');
      await cl.sql('GRANT admin TO gina WITH INHERIT TRUE, SET FALSE');
      await pass();
      const f = await session('fred', 'admin');
      const g = await session('gina');
      expect(Number((await g.c.query<{ n: string }>('SELECT count(*) AS n FROM adm.secret')).rows[0]!.n)).toBe(1);

      await cl.sql('REVOKE INHERIT OPTION FOR admin FROM gina');
      expect(await pass()).toMatchObject({ lost: [], kills: [] });
      expect(await canQuery(g.c)).toBe(true);

      await cl.sql('REVOKE SET OPTION FOR admin FROM fred');
      const r = await pass();
      expect(r.lost.map((l) => [l.memberName, l.roleName])).toEqual([['fred', 'admin']]);
      expect(r.kills.map((k) => k.pid)).toEqual([f.pid]);
      await gone(f.pid);
    },
  );

  it('--dry-run reports and ends nothing; --exclude-role and a superuser member are never touched', async () => {
    await login('hank', 'ivy', 'jack');
    await cl.sql('ALTER ROLE jack SUPERUSER');
    await cl.sql('GRANT admin TO hank, ivy, jack');
    await pass();
    const h = await session('hank', 'admin');
    const i = await session('ivy', 'admin');
    const j = await session('jack', 'admin');
    await cl.sql('REVOKE admin FROM hank, ivy, jack');
    const dry = await pass({ dryRun: true, exclude: ['ivy'] });
    expect(dry.lost.map((l) => l.memberName)).toEqual(['hank', 'ivy', 'jack']);
    expect(dry.kills.map((k) => [k.pid, k.terminated, k.dryRun])).toEqual([[h.pid, false, true]]);
    expect(dry.audit).toEqual([]);
    for (const s of [h, i, j]) expect(await currentUser(s.c)).toBe('admin');
  });

  it('a guard role that may not signal the member: denied, said and audited, the session left', async () => {
    await login('kim');
    await cl.sql(`CREATE ROLE weakguard LOGIN PASSWORD '${PW}' IN ROLE pg_read_all_stats`);
    const weak = await cl.connectAs('weakguard', PW);
    await cl.sql('GRANT admin TO kim');
    await pass({}, weak);
    const k = await session('kim', 'admin');
    await cl.sql('REVOKE admin FROM kim');
    const r = await pass({}, weak);
    expect(r.kills).toEqual([]);
    expect(r.denied.map((d) => [d.kill.pid, d.kill.terminated])).toEqual([[k.pid, false]]);
    expect(r.denied[0]!.message).toContain('permission denied');
    expect(r.audit.map((a) => [a.session.pid, a.result, a.reason])).toEqual([[k.pid, 'denied', 'membership_revoked']]);
    expect(await currentUser(k.c)).toBe('admin');
  });
});
