// The test harness's streaming standby, on every major under test: pg_basebackup -R -X stream from
// an embedded primary where Debian's postgresql-client-15 can back it up (14, 15), else the
// low-level backup API with a replication slot (the embedded packages have no pg_basebackup). These tests prove the harness the multi-node tests stand on: the
// standby is in recovery, replays the primary's roles and commits, accepts the role's sessions,
// and shares the primary's system identifier.
import { existsSync } from 'node:fs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lsnBytes, MAJORS, startCluster, startStandby, waitForReplay, type TestCluster } from '../helpers/cluster.js';

const PW = 'pw-on-both';

describe.each(MAJORS)('streaming standby (PostgreSQL %i)', (major) => {
  let primary: TestCluster;
  let standby: TestCluster;

  beforeAll(async () => {
    primary = await startCluster(major);
    standby = await startStandby(primary);
  });

  afterAll(async () => {
    await standby?.destroyAll();
    await primary?.destroyAll();
  });

  it('the standby is a hot standby in recovery, on its own port, streaming from the primary', async () => {
    expect(standby.port).not.toBe(primary.port);
    expect(standby.dataDir).not.toBe(primary.dataDir);
    expect(await standby.sql('SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    expect(await primary.sql('SELECT pg_is_in_recovery() AS r')).toEqual([{ r: false }]);
    const [wr] = await standby.sql<{ status: string; port: number }>('SELECT status, sender_port AS port FROM pg_stat_wal_receiver');
    expect(wr).toEqual({ status: 'streaming', port: primary.port });
    const senders = await primary.sql<{ state: string }>("SELECT state FROM pg_stat_replication WHERE application_name = 'walreceiver'");
    expect(senders.map((s) => s.state)).toEqual(['streaming']);
    await expect(standby.sql('CREATE TABLE nope (x int)')).rejects.toThrow(/read-only transaction/);
  });

  it('a role created on the primary logs in on the standby after replay; its sessions run on both', async () => {
    await primary.sql(`CREATE ROLE mallory LOGIN PASSWORD '${PW}'`);
    await waitForReplay(primary, standby);
    const onPrimary = await primary.connectAs('mallory', PW);
    const onStandby = await standby.connectAs('mallory', PW);
    const who = async (c: pg.Client) =>
      (await c.query<{ u: string; r: boolean; pid: number }>('SELECT current_user AS u, pg_is_in_recovery() AS r, pg_backend_pid() AS pid'))
        .rows[0]!;
    const p = await who(onPrimary);
    const s = await who(onStandby);
    expect([p.u, p.r, s.u, s.r]).toEqual(['mallory', false, 'mallory', true]);
    expect(await primary.sql('SELECT usename FROM pg_stat_activity WHERE pid = $1', [p.pid])).toEqual([{ usename: 'mallory' }]);
    expect(await standby.sql('SELECT usename FROM pg_stat_activity WHERE pid = $1', [s.pid])).toEqual([{ usename: 'mallory' }]);
  });

  it('synchronous_commit=off: after COMMIT the write position lags the insert position, and replay reaches the insert position', async () => {
    expect(await primary.sql('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'off' }]);
    await primary.sql('CREATE TABLE marks (n int)');
    // the walwriter may happen to write in between: one lagging commit out of a few proves the point
    let lagged = 0;
    for (let n = 1; n <= 5; n++) {
      await primary.sql('INSERT INTO marks VALUES ($1)', [n]);
      const [p] = await primary.sql<{ w: string; i: string }>(
        'SELECT pg_current_wal_lsn()::text AS w, pg_current_wal_insert_lsn()::text AS i',
      );
      if (lsnBytes(p!.w) < lsnBytes(p!.i)) lagged++;
    }
    expect(lagged).toBeGreaterThan(0);
    const [p] = await primary.sql<{ i: string }>('SELECT pg_current_wal_insert_lsn()::text AS i');
    const replayed = await waitForReplay(primary, standby);
    // the target may sit one page header below the insert position (a record ending at a page boundary)
    expect(lsnBytes(replayed) + 40n).toBeGreaterThanOrEqual(lsnBytes(p!.i));
    expect(await standby.sql('SELECT max(n) AS n FROM marks')).toEqual([{ n: 5 }]);
  });

  it('pg_control_system(): the same system identifier on primary and standby, another on an unrelated cluster; a non-superuser may call it', async () => {
    const other = await startCluster(major);
    try {
      const sysid = async (c: TestCluster) =>
        (await c.sql<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()'))[0]!.id;
      const [p, s, o] = [await sysid(primary), await sysid(standby), await sysid(other)];
      expect(s).toBe(p);
      expect(o).not.toBe(p);
      // EXECUTE is granted to PUBLIC by default (proacl is null): any role can group nodes by it
      await primary.sql("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'");
      await waitForReplay(primary, standby);
      for (const [node, want] of [
        [primary, p],
        [standby, p],
      ] as const) {
        const c = await node.connectAs('plain', 'plain-pw');
        const { rows } = await c.query<{ id: string; su: boolean }>(
          "SELECT system_identifier::text AS id, current_setting('is_superuser')::boolean AS su FROM pg_control_system()",
        );
        expect(rows).toEqual([{ id: want, su: false }]);
      }
      expect(await primary.sql("SELECT proacl FROM pg_proc WHERE proname = 'pg_control_system'")).toEqual([{ proacl: null }]);
    } finally {
      await other.destroyAll();
    }
  });

  it('destroyAll() stops the standby and removes its directory; the primary keeps running', async () => {
    const slots = () => primary.sql<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots ORDER BY 1');
    const before = await slots();
    const extra = await startStandby(primary);
    expect(await extra.sql('SELECT pg_is_in_recovery() AS r')).toEqual([{ r: true }]);
    await extra.destroyAll();
    expect(existsSync(extra.baseDir)).toBe(false);
    // a slot left behind would hold the primary's WAL for ever
    expect(await slots()).toEqual(before);
    expect(await primary.sql('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});
