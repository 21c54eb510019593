// What PostgreSQL itself does when a role loses a membership while its sessions are open: the
// reason for `guard --on-membership-revoked` (docs/postgres-notes.md, "SET ROLE outlives REVOKE").
// These tests document the server, not pgrevoke: each asserts what the server really does, so a
// major that changes the behaviour fails here. Every statement runs on a real session of the role.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const PW = 'pw';

/** 'ok', or the SQLSTATE the statement failed with. */
async function outcome(c: pg.Client, sql: string): Promise<string> {
  try {
    await c.query(sql);
    return 'ok';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
}

async function whoami(c: pg.Client): Promise<{ current: string; session: string }> {
  const { rows } = await c.query<{ current: string; session: string }>(
    'SELECT current_user::text AS current, session_user::text AS session',
  );
  return rows[0]!;
}

async function rowsOf(c: pg.Client, sql: string): Promise<number> {
  return Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
}

describe.each(MAJORS)('membership holdover on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const as = (role: string) => cl.connectAs(role, PW);
  /** A NOLOGIN role owning schema `<role>_s` with a table `<role>_s.secret` of 3 rows: what membership in it is worth. */
  const privileged = async (role: string) => {
    await cl.sql(`CREATE ROLE ${role} NOLOGIN`);
    await cl.sql(`CREATE SCHEMA ${role}_s AUTHORIZATION ${role}`);
    await cl.sql(`CREATE TABLE ${role}_s.secret AS SELECT generate_series(1, 3) AS x`);
    await cl.sql(`ALTER TABLE ${role}_s.secret OWNER TO ${role}`);
  };
  const login = async (...roles: string[]) => {
    for (const r of roles) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
  };
  const loginRoleOf = async (c: pg.Client) => {
    const pid = (c as unknown as { processID: number }).processID;
    const rows = await cl.sql<{ usename: string }>('SELECT usename::text AS usename FROM pg_stat_activity WHERE pid = $1', [pid]);
    return rows[0]?.usename;
  };

  beforeAll(async () => {
    cl = await startCluster(major);
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('SET ROLE admin outlives REVOKE admin FROM alice: the session reads, creates and calls as admin until RESET ROLE', async () => {
    await privileged('adm1');
    await login('alice1');
    await cl.sql(`CREATE FUNCTION adm1_s.only_admin() RETURNS text SECURITY DEFINER LANGUAGE sql AS 'SELECT current_user::text'`);
    await cl.sql(`ALTER FUNCTION adm1_s.only_admin() OWNER TO adm1`);
    await cl.sql(`REVOKE EXECUTE ON FUNCTION adm1_s.only_admin() FROM PUBLIC`);
    await cl.sql('GRANT adm1 TO alice1');
    const held = await as('alice1');
    expect(await outcome(held, 'SET ROLE adm1')).toBe('ok');

    await cl.sql('REVOKE adm1 FROM alice1');
    expect(await cl.sql(`SELECT 1 FROM pg_auth_members WHERE member = 'alice1'::regrole`)).toHaveLength(0);

    expect(await whoami(held)).toEqual({ current: 'adm1', session: 'alice1' });
    expect(await rowsOf(held, 'SELECT count(*) AS n FROM adm1_s.secret')).toBe(3);
    expect(await outcome(held, 'CREATE TABLE adm1_s.made_after(y int)')).toBe('ok');
    expect((await cl.sql(`SELECT tableowner::text AS o FROM pg_tables WHERE tablename = 'made_after'`))[0]).toEqual({ o: 'adm1' });
    expect((await held.query('SELECT adm1_s.only_admin() AS f')).rows[0]).toEqual({ f: 'adm1' });
    // what pg_stat_activity shows of it: the login role, nothing else
    expect(await loginRoleOf(held)).toBe('alice1');
    // the holdover cannot grant itself back in
    expect(await outcome(held, 'GRANT adm1 TO alice1')).toBe('42501');
    // SET ROLE is checked against the session user's memberships now: refused, and the refusal leaves it admin
    expect(await outcome(held, 'SET ROLE adm1')).toBe('42501');
    expect(await whoami(held)).toEqual({ current: 'adm1', session: 'alice1' });
    expect(await rowsOf(held, 'SELECT count(*) AS n FROM adm1_s.secret')).toBe(3);
    // a new session of alice cannot become admin, nor call admin's function
    const fresh = await as('alice1');
    expect(await outcome(fresh, 'SET ROLE adm1')).toBe('42501');
    expect(await outcome(fresh, 'SELECT adm1_s.only_admin()')).toBe('42501');
    // RESET ROLE ends the holdover for good
    expect(await outcome(held, 'RESET ROLE')).toBe('ok');
    expect(await whoami(held)).toEqual({ current: 'alice1', session: 'alice1' });
    expect(await outcome(held, 'SELECT count(*) FROM adm1_s.secret')).toBe('42501');
    expect(await outcome(held, 'SET ROLE adm1')).toBe('42501');
  });

  it('SET LOCAL ROLE outlives the REVOKE until the end of its transaction', async () => {
    await privileged('adm2');
    await login('alice2');
    await cl.sql('GRANT adm2 TO alice2');
    const c = await as('alice2');
    await c.query('BEGIN');
    expect(await outcome(c, 'SET LOCAL ROLE adm2')).toBe('ok');
    await cl.sql('REVOKE adm2 FROM alice2');
    expect(await whoami(c)).toEqual({ current: 'adm2', session: 'alice2' });
    expect(await rowsOf(c, 'SELECT count(*) AS n FROM adm2_s.secret')).toBe(3);
    await c.query('COMMIT');
    expect(await whoami(c)).toEqual({ current: 'alice2', session: 'alice2' });
  });

  it('inherited privileges (no SET ROLE) end with the next statement, inside an open transaction too; an open cursor keeps fetching', async () => {
    await privileged('adm3');
    await login('alice3');
    await cl.sql('GRANT adm3 TO alice3');
    const plain = await as('alice3');
    const committed = await as('alice3');
    const repeatable = await as('alice3');
    const cursor = await as('alice3');
    expect(await rowsOf(plain, 'SELECT count(*) AS n FROM adm3_s.secret')).toBe(3);
    await committed.query('BEGIN');
    expect(await rowsOf(committed, 'SELECT count(*) AS n FROM adm3_s.secret')).toBe(3);
    await repeatable.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    expect(await rowsOf(repeatable, 'SELECT count(*) AS n FROM adm3_s.secret')).toBe(3);
    await cursor.query('BEGIN');
    await cursor.query('DECLARE c CURSOR FOR SELECT x FROM adm3_s.secret ORDER BY x');
    expect((await cursor.query('FETCH 1 FROM c')).rows).toEqual([{ x: 1 }]);

    await cl.sql('REVOKE adm3 FROM alice3');

    expect(await outcome(plain, 'SELECT count(*) FROM adm3_s.secret')).toBe('42501');
    expect(await outcome(committed, 'SELECT count(*) FROM adm3_s.secret')).toBe('42501');
    expect(await outcome(repeatable, 'SELECT count(*) FROM adm3_s.secret')).toBe('42501');
    // the cursor's permissions were checked when it was opened: any REVOKE leaves it reading
    expect((await cursor.query('FETCH 2 FROM c')).rows).toEqual([{ x: 2 }, { x: 3 }]);
    expect(await outcome(cursor, 'SELECT count(*) FROM adm3_s.secret')).toBe('42501');
    for (const c of [committed, repeatable, cursor]) await c.query('ROLLBACK');
  });

  it('SECURITY DEFINER: cannot SET ROLE, does not end a holdover; a function SET role = admin clause is refused after the REVOKE', async () => {
    await privileged('adm4');
    await login('alice4');
    await cl.sql('GRANT adm4 TO alice4');
    await cl.sql('CREATE SCHEMA alice4_s AUTHORIZATION alice4');
    const c = await as('alice4');
    await c.query(`CREATE FUNCTION alice4_s.definer() RETURNS text SECURITY DEFINER LANGUAGE sql AS 'SELECT current_user::text'`);
    await c.query(
      `CREATE FUNCTION alice4_s.setter() RETURNS text SECURITY DEFINER LANGUAGE plpgsql AS $$BEGIN SET ROLE adm4; RETURN current_user; END$$`,
    );
    await c.query(`CREATE FUNCTION alice4_s.as_admin() RETURNS text LANGUAGE sql SET role = adm4 AS 'SELECT current_user::text'`);
    await c.query('GRANT USAGE ON SCHEMA alice4_s TO adm4');
    // a SECURITY DEFINER function may not change the role at all, member or not
    expect(await outcome(c, 'SELECT alice4_s.setter()')).toBe('42501');
    expect((await c.query('SELECT alice4_s.as_admin() AS r')).rows[0]).toEqual({ r: 'adm4' });
    const held = await as('alice4');
    await held.query('SET ROLE adm4');

    await cl.sql('REVOKE adm4 FROM alice4');

    // the function's SET role clause is checked at each call, like SET ROLE
    expect(await outcome(c, 'SELECT alice4_s.as_admin()')).toBe('42501');
    // a SECURITY DEFINER call from the holdover runs as its owner, then hands admin back
    expect((await held.query('SELECT alice4_s.definer() AS d, current_user::text AS u')).rows[0]).toEqual({ d: 'alice4', u: 'adm4' });
    expect(await rowsOf(held, 'SELECT count(*) AS n FROM adm4_s.secret')).toBe(3);
  });

  it('through a chain (alice in mid, mid in admin): SET ROLE admin outlives REVOKE admin FROM mid and REVOKE mid FROM alice', async () => {
    await privileged('adm5');
    await login('alice5');
    await cl.sql('CREATE ROLE mid5 NOLOGIN');
    await cl.sql('GRANT mid5 TO alice5');
    await cl.sql('GRANT adm5 TO mid5');
    const upper = await as('alice5');
    const inherited = await as('alice5');
    expect(await outcome(upper, 'SET ROLE adm5')).toBe('ok');
    expect(await rowsOf(inherited, 'SELECT count(*) AS n FROM adm5_s.secret')).toBe(3);

    await cl.sql('REVOKE adm5 FROM mid5');
    expect(await whoami(upper)).toEqual({ current: 'adm5', session: 'alice5' });
    expect(await rowsOf(upper, 'SELECT count(*) AS n FROM adm5_s.secret')).toBe(3);
    expect(await outcome(inherited, 'SELECT count(*) FROM adm5_s.secret')).toBe('42501');
    expect(await outcome(inherited, 'SET ROLE adm5')).toBe('42501');
    expect(await outcome(inherited, 'SET ROLE mid5')).toBe('ok');

    await cl.sql('GRANT adm5 TO mid5');
    const lower = await as('alice5');
    expect(await outcome(lower, 'SET ROLE adm5')).toBe('ok');
    await cl.sql('REVOKE mid5 FROM alice5');
    expect(await whoami(lower)).toEqual({ current: 'adm5', session: 'alice5' });
    expect(await rowsOf(lower, 'SELECT count(*) AS n FROM adm5_s.secret')).toBe(3);
    expect(await outcome(lower, 'SET ROLE adm5')).toBe('42501');
    expect(await loginRoleOf(lower)).toBe('alice5');
  });

  it('grant options (16+): SET ROLE outlives REVOKE SET OPTION; REVOKE INHERIT OPTION ends inherited reads at once; SET needs SET on every link', async () => {
    await privileged('adm6');
    await login('alice6', 'bob6', 'carol6');
    await cl.sql('CREATE ROLE mid6 NOLOGIN');
    if (major < 16) {
      // no options before 16: every membership allows SET ROLE, whatever the member's INHERIT
      expect(await outcome(cl.admin, 'GRANT adm6 TO alice6 WITH SET TRUE')).toBe('42601');
      expect(await outcome(cl.admin, 'SELECT set_option FROM pg_auth_members')).toBe('42703');
      await cl.sql('ALTER ROLE alice6 NOINHERIT');
      await cl.sql('GRANT adm6 TO alice6');
      const c = await as('alice6');
      expect(await outcome(c, 'SELECT count(*) FROM adm6_s.secret')).toBe('42501');
      expect(await outcome(c, 'SET ROLE adm6')).toBe('ok');
      return;
    }
    // SET TRUE, INHERIT FALSE: admin's privileges only through SET ROLE
    await cl.sql('GRANT adm6 TO alice6 WITH INHERIT FALSE, SET TRUE');
    const held = await as('alice6');
    expect(await outcome(held, 'SELECT count(*) FROM adm6_s.secret')).toBe('42501');
    expect(await outcome(held, 'SET ROLE adm6')).toBe('ok');
    await cl.sql('REVOKE SET OPTION FOR adm6 FROM alice6');
    expect(await cl.sql(`SELECT set_option, inherit_option FROM pg_auth_members WHERE member = 'alice6'::regrole`)).toEqual([
      { set_option: false, inherit_option: false },
    ]);
    expect(await whoami(held)).toEqual({ current: 'adm6', session: 'alice6' });
    expect(await rowsOf(held, 'SELECT count(*) AS n FROM adm6_s.secret')).toBe(3);
    expect(await outcome(held, 'SET ROLE adm6')).toBe('42501');

    // INHERIT TRUE, SET FALSE: privileges per statement, no SET ROLE, nothing held over
    await cl.sql('GRANT adm6 TO bob6 WITH INHERIT TRUE, SET FALSE');
    const bob = await as('bob6');
    expect(await outcome(bob, 'SET ROLE adm6')).toBe('42501');
    expect(await rowsOf(bob, 'SELECT count(*) AS n FROM adm6_s.secret')).toBe(3);
    await cl.sql('REVOKE INHERIT OPTION FOR adm6 FROM bob6');
    expect(await outcome(bob, 'SELECT count(*) FROM adm6_s.secret')).toBe('42501');

    // a chain whose first link has SET FALSE: no SET ROLE to either, admin's privileges inherited
    await cl.sql('GRANT mid6 TO carol6 WITH SET FALSE, INHERIT TRUE');
    await cl.sql('GRANT adm6 TO mid6 WITH SET TRUE, INHERIT TRUE');
    const carol = await as('carol6');
    expect(await outcome(carol, 'SET ROLE adm6')).toBe('42501');
    expect(await outcome(carol, 'SET ROLE mid6')).toBe('42501');
    expect(await rowsOf(carol, 'SELECT count(*) AS n FROM adm6_s.secret')).toBe(3);
  });

  it(`NOSUPERUSER: SET ROLE outlives it; SET SESSION AUTHORIZATION back to a superuser is ${major < 17 ? 'still allowed' : 'refused'}`, async () => {
    await privileged('adm7');
    await login('carol7');
    await cl.sql(`CREATE ROLE sup7 LOGIN SUPERUSER PASSWORD '${PW}'`);
    const asAdmin = await as('sup7');
    const asCarol = await as('sup7');
    const plain = await as('sup7');
    await asAdmin.query('SET ROLE adm7');
    await asCarol.query('SET SESSION AUTHORIZATION carol7');

    await cl.sql('ALTER ROLE sup7 NOSUPERUSER');

    expect(await whoami(asAdmin)).toEqual({ current: 'adm7', session: 'sup7' });
    expect(await rowsOf(asAdmin, 'SELECT count(*) AS n FROM adm7_s.secret')).toBe(3);
    expect(await outcome(asAdmin, 'SET ROLE adm7')).toBe('42501');
    expect(await whoami(asCarol)).toEqual({ current: 'carol7', session: 'carol7' });
    expect(await loginRoleOf(asCarol)).toBe('sup7');
    // the superuser bit itself is read per statement...
    expect(await outcome(plain, 'SELECT count(*) FROM adm7_s.secret')).toBe('42501');
    // ...but before 17, SET SESSION AUTHORIZATION trusts what the role was at login
    const back = major < 17 ? 'ok' : '42501';
    expect(await outcome(plain, 'SET SESSION AUTHORIZATION postgres')).toBe(back);
    expect(await outcome(asCarol, 'SET SESSION AUTHORIZATION postgres')).toBe(back);
    if (major < 17) {
      expect(await whoami(plain)).toEqual({ current: 'postgres', session: 'postgres' });
      expect(await rowsOf(plain, `SELECT count(*) AS n FROM pg_authid WHERE rolname = 'sup7'`)).toBe(1);
    } else {
      expect(await whoami(plain)).toEqual({ current: 'sup7', session: 'sup7' });
    }
  });
});
