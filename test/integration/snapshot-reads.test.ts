// The snapshot's one round trip (snapshotReads: OIDs and names spliced in as literals) against the
// parameterised queries inspect runs: on a real server, with a hostile role name, two targets, a
// lock, a blocked bystander and a prepared transaction, each target's results are the same.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectHiddenBackends, toHiddenBackends } from '../../src/checks/hidden-backends.js';
import { collectBlocking, collectLocks, toBlockingRows, toLockRows } from '../../src/checks/locks.js';
import { collectPrepared, toPreparedXacts } from '../../src/checks/prepared-xacts.js';
import { collectSessions, toSession, type ActivityRow } from '../../src/checks/sessions.js';
import { ident } from '../../src/pg/quote.js';
import { queryAll } from '../../src/pg/query-all.js';
import { snapshotReads } from '../../src/playbook/sql.js';
import { MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';

const HOSTILE = `snap "a\\b' OR 'x`;
const PLAIN = 'snap_b';

/** What moves between two reads (seconds waited, ages): left out of the comparison. */
function stable(rows: object[]): object[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !/seconds|stateChange/i.test(k))));
}

describe.each(MAJORS)('the snapshot in one round trip on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let admin: pg.Client;
  const held: pg.Client[] = [];
  let blocked: Promise<unknown> | null = null;

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql('CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0); GRANT ALL ON t TO PUBLIC');
    for (const r of [HOSTILE, PLAIN]) await cl.sql(`CREATE ROLE ${ident(r)} LOGIN PASSWORD 'pw'`);
    const a = await cl.connectAs(HOSTILE, 'pw');
    await a.query('BEGIN');
    await a.query('UPDATE t SET v = 1 WHERE id = 1');
    const b = await cl.connectAs(PLAIN, 'pw');
    await b.query('BEGIN');
    await b.query('UPDATE t SET v = 1 WHERE id = 2');
    await b.query(`PREPARE TRANSACTION 'snap-px'`);
    const idle = await cl.connectAs(PLAIN, 'pw');
    held.push(a, b, idle);
    // a bystander waiting on the hostile role's row lock
    admin = await cl.connectAs('postgres', cl.password);
    blocked = admin.query('UPDATE t SET v = 2 WHERE id = 1').catch(() => undefined);
    const probe = await cl.connectAs('postgres', cl.password);
    try {
      for (let i = 0; i < 200; i++) {
        const { rows } = await probe.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`);
        if (rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await probe.end();
    }
  });

  afterAll(async () => {
    await cl?.sql(`ROLLBACK PREPARED 'snap-px'`).catch(() => undefined);
    for (const c of held) await c.end().catch(() => undefined);
    await blocked;
    await admin?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it("returns, per target, what inspect's parameterised queries return, then the hidden backends", async () => {
    const q = await cl.connectAs('postgres', cl.password);
    try {
      const targets = (
        await q.query<{ oid: number; name: string }>(
          `SELECT oid::int8::int AS oid, rolname AS name FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname DESC`,
          [[HOSTILE, PLAIN]],
        )
      ).rows;
      expect(targets.map((t) => t.name)).toEqual([PLAIN, HOSTILE]);
      const results = await queryAll(q, snapshotReads(targets, major));
      expect(results).toHaveLength(targets.length * 4 + 1);
      for (const [i, t] of targets.entries()) {
        const [sessions, locks, blocking, prepared] = results.slice(i * 4, i * 4 + 4);
        const rawSessions = (await q.query(`SELECT pid FROM pg_stat_activity WHERE usesysid = $1`, [t.oid])).rows.map((r) => r.pid);
        expect((sessions as ActivityRow[]).map((s) => s.pid).sort()).toEqual(rawSessions.sort());
        expect(stable((sessions as ActivityRow[]).map(toSession))).toEqual(stable(await collectSessions(q, t.oid)));
        expect(stable(toLockRows(locks!))).toEqual(stable(await collectLocks(q, t.oid, t.name)));
        expect(stable(toBlockingRows(blocking!))).toEqual(stable(await collectBlocking(q, t.oid, t.name)));
        expect(stable(toPreparedXacts(prepared!))).toEqual(stable(await collectPrepared(q, t.name)));
      }
      // the hostile role holds the row lock the bystander waits on; the plain one the prepared transaction
      const [hLocks, hBlocking] = results.slice(5, 7);
      expect(hLocks!.length).toBeGreaterThan(0);
      expect(new Set(toBlockingRows(hBlocking!).map((b) => b.blockedUser))).toEqual(new Set(['postgres']));
      expect(results[3]!.map((p) => (p as { gid: string }).gid)).toEqual(['snap-px']);
      expect(toHiddenBackends(results.at(-1)!)).toEqual(await collectHiddenBackends(q, major));
    } finally {
      await q.end();
    }
  });
});
