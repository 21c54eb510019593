// The plan state in one round trip (planReads: names spliced in as literals) against the
// parameterised queries it replaced, on a real server: a hostile role name, two targets, a role a
// target administers, a prepared transaction, owned objects, --reassign-to. Counted on the real
// client (--hba-file given: without it the HBA decision compares the server's file in a query of
// its own, which may be refused): one query for the plan state, the snapshot riding in it when asked for; a second only for
// roles --include-created adds.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectAdministeredRoles } from '../../src/checks/administered-roles.js';
import { collectPrepared } from '../../src/checks/prepared-xacts.js';
import type { Queryable } from '../../src/checks/types.js';
import { resolveConnParams } from '../../src/pg/conninfo.js';
import { ident } from '../../src/pg/quote.js';
import { queryAll } from '../../src/pg/query-all.js';
import { findRole } from '../../src/pg/roles.js';
import { collectOperator, collectServer } from '../../src/pg/server.js';
import { collectPlanState } from '../../src/playbook/collect.js';
import { toSnapshot } from '../../src/playbook/snapshot-rows.js';
import { ADMIN_OF_SQL, OWNED_DATABASES_SQL, snapshotReads, SUBSCRIPTIONS_SQL } from '../../src/playbook/sql.js';
import { MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';

const HOSTILE = `plan "a\\b' OR 'x`;
const PLAIN = 'plan_b';
const MADE = 'plan_made';

/** The real client, each query counted. */
function counted(c: pg.Client): Queryable & { n: number } {
  const q = { n: 0, query: ((...args: Parameters<pg.Client['query']>) => (q.n++, c.query(...args))) as unknown as Queryable['query'] };
  return q;
}

/** What moves between two reads (seconds waited, ages, the time taken): left out of the comparison. */
function stable(x: object): unknown {
  return JSON.parse(JSON.stringify(x, (k, v: unknown) => (/seconds|stateChange|takenAt/i.test(k) ? undefined : v)));
}

describe.each(MAJORS)('the plan state in one round trip on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  const held: pg.Client[] = [];
  const params = () => resolveConnParams({ dsn: cl.dsn() }, {});

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql('CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0); GRANT ALL ON t TO PUBLIC');
    await cl.sql(`CREATE ROLE ${ident(HOSTILE)} LOGIN CREATEROLE PASSWORD 'pw'`);
    await cl.sql(`CREATE ROLE ${ident(PLAIN)} LOGIN PASSWORD 'pw'`);
    await cl.sql(`CREATE ROLE heir`);
    await cl.sql(`CREATE TABLE owned_by_b (id int); ALTER TABLE owned_by_b OWNER TO ${ident(PLAIN)}`);
    // a role the hostile target administers (CREATE ROLE by it, on 16+; granted WITH ADMIN OPTION before)
    const h = await cl.connectAs(HOSTILE, 'pw');
    await h.query(`CREATE ROLE ${MADE} LOGIN PASSWORD 'pw'`);
    if (major < 16) await cl.sql(`GRANT ${MADE} TO ${ident(HOSTILE)} WITH ADMIN OPTION`);
    const b = await cl.connectAs(PLAIN, 'pw');
    await b.query('BEGIN');
    await b.query('UPDATE t SET v = 1 WHERE id = 2');
    await b.query(`PREPARE TRANSACTION 'plan-px'`);
    held.push(h, b);
    client = await cl.connectAs('postgres', cl.password);
  });

  afterAll(async () => {
    await cl?.sql(`ROLLBACK PREPARED 'plan-px'`).catch(() => undefined);
    for (const c of held) await c.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it("reads in one query what the parameterised queries read, per target, with --reassign-to's role", async () => {
    const q = counted(client);
    const input = { roles: [PLAIN, HOSTILE, PLAIN], reassignTo: 'heir', hbaFile: cl.hbaFile };
    const { state, operator, snapshot } = await collectPlanState(params(), q, input);
    expect(q.n).toBe(1);
    expect(snapshot).toBeNull();
    // the same facts, read one query at a time as before
    const server = await collectServer(client);
    const targets = [(await findRole(client, PLAIN))!, (await findRole(client, HOSTILE))!];
    expect(state.server).toEqual(server);
    expect(state.targets).toEqual(targets);
    const ops = await Promise.all(targets.map((t) => collectOperator(client, t.oid)));
    expect(operator).toEqual({ ...ops[0], memberOfTarget: ops.every((o) => o.memberOfTarget) });
    const made = (await collectAdministeredRoles(client, targets[1]!.oid, major)).roles;
    expect(made.map((r) => r.name)).toEqual([MADE]);
    expect(state.administered).toEqual(made.map((r) => ({ ...r, of: HOSTILE })));
    const prepared = (await collectPrepared(client, PLAIN)).map((p) => ({ ...p, role: PLAIN }));
    expect(prepared.map((p) => p.gid)).toEqual(['plan-px']);
    expect(stable(state.prepared)).toEqual(stable(prepared));
    for (const t of targets) {
      expect(state.subscriptions.filter((s) => s.role === t.name)).toEqual(
        (await client.query(SUBSCRIPTIONS_SQL, [t.oid])).rows.map((s: object) => ({ ...s, role: t.name })),
      );
      const owned = (await client.query<{ database: string | null; shared: boolean }>(OWNED_DATABASES_SQL, [t.oid])).rows;
      expect(state.ownedDatabases.find((o) => o.role === t.name)).toEqual({
        role: t.name,
        databases: owned.filter((r) => !r.shared && r.database).map((r) => r.database),
        shared: owned.some((r) => r.shared),
      });
      const admin = (await client.query<{ admin: boolean }>(ADMIN_OF_SQL, [t.oid])).rows[0]!.admin;
      expect(state.adminOf.includes(t.name)).toBe(admin);
    }
    expect(state.ownedDatabases.find((o) => o.role === PLAIN)!.databases).toEqual(['postgres']);
  });

  it('with the snapshot: still one query, and the snapshot is what its own round trip reads', async () => {
    const q = counted(client);
    const { state, snapshot } = await collectPlanState(params(), q, { roles: [PLAIN, HOSTILE], hbaFile: cl.hbaFile }, { snapshot: true });
    expect(q.n).toBe(1);
    const names = state.targets.map((t) => t.name);
    const own = toSnapshot(await queryAll(client, snapshotReads(state.targets, major)), names, '');
    expect(own.sessions.length).toBeGreaterThanOrEqual(2);
    expect(own.preparedTransactions.map((p) => p.gid)).toEqual(['plan-px']);
    expect(stable(snapshot!)).toEqual(stable(own));
  });

  it('--include-created: a second query for the roles it adds; the snapshot is then left to the step', async () => {
    const q = counted(client);
    const { state, snapshot } = await collectPlanState(
      params(),
      q,
      { roles: [HOSTILE], includeCreated: true, hbaFile: cl.hbaFile },
      { snapshot: true },
    );
    expect(q.n).toBe(2);
    expect(state.targets.map((t) => t.name)).toEqual([HOSTILE, MADE]);
    expect(snapshot).toBeNull();
  });

  it('a name no role has: the hint (exit 2), or over a fleet left out', async () => {
    await expect(collectPlanState(params(), client, { roles: [PLAIN, 'Plan_B'] })).rejects.toMatchObject({
      message: 'role "Plan_B" does not exist',
      hint: expect.stringContaining('"plan_b"'),
    });
    const q = counted(client);
    const { state } = await collectPlanState(params(), q, { roles: ['nobody_here', PLAIN], hbaFile: cl.hbaFile }, { absentOk: true });
    expect(state.targets.map((t) => t.name)).toEqual([PLAIN]);
    expect(q.n).toBe(1);
  });
});
