// The snapshot step kind: its plan (read-only, no statement), and its apply, which reads through
// the reader in a dry run as in a real one (readOnly), logs nothing through the executor, and gives
// way under a lock on a system catalog.
import { describe, expect, it } from 'vitest';
import type { Queryable } from '../../../src/checks/types.js';
import { snapshotReads } from '../../../src/playbook/sql.js';
import { StepSkipped } from '../../../src/playbook/steps/kind.js';
import { snapshotStep } from '../../../src/playbook/steps/snapshot.js';
import { dryApply, executed, MALLORY, planState, planWith, playbookStep, QUOTED, reader, sqlError } from './fixtures.js';

const session = (pid: number, usesysid: number) => ({
  pid,
  datname: 'app',
  usename: usesysid === MALLORY.oid ? 'mallory' : 'x"y',
  usesysid,
  client_addr: '198.51.100.9',
  client_port: 51234,
  application_name: 'exfil',
  backend_type: 'client backend',
  state: 'idle',
  backend_start: '2030-01-01 00:00:00+00',
  xact_start: null,
  state_change: '2030-01-01 00:00:01+00',
  wait_event_type: 'Client',
  wait_event: 'ClientRead',
  query_id: null,
  query: 'SELECT * FROM customers',
});

describe('snapshot plan', () => {
  it('one read-only step with no statement of its own', () => {
    expect(planWith(snapshotStep).steps).toEqual([
      {
        action: 'snapshot',
        database: null,
        role: null,
        sql: [],
        reason: 'read-only forensics before anything changes: sessions, hidden backends, locks, blocking, prepared transactions',
      },
    ]);
  });

  it('takes no fields, has no position rule, and runs for real in a dry run', () => {
    expect(playbookStep(snapshotStep)).toEqual({ action: 'snapshot' });
    expect(() => playbookStep(snapshotStep, { timeout_s: 1 })).toThrow();
    expect('order' in snapshotStep).toBe(false);
    expect(snapshotStep.readOnly).toBe(true);
  });
});

/** A reader that answers one multi-statement simple query with one result per statement, as pg does. */
function multiReader(results: Record<string, unknown>[][]): Queryable & { queries: string[] } {
  const queries: string[] = [];
  return {
    queries,
    query: (async (sql: string) => (queries.push(sql), results.map((rows) => ({ rows })))) as unknown as Queryable['query'],
  };
}

describe('snapshot apply', () => {
  it("dry run: one round trip through the reader, each target's results under its name; the executor logs nothing", async () => {
    const st = planState({ targets: [MALLORY, QUOTED] });
    const lock = { pid: 4343, locktype: 'relation', mode: 'RowExclusiveLock', granted: true, database: 'app', relation: 'loot' };
    const prepared = { gid: 'px', database: 'app', transaction: '745', prepared: '2030-01-01', age_seconds: 1, locks: 0, holds: [] };
    const hidden = { pid: 5151, via: 'virtualxid', backend_start: null, client_addr: null };
    // per target: sessions, locks, blocking, prepared; then the hidden backends once
    const r = multiReader([[session(4242, MALLORY.oid)], [], [], [prepared], [session(4343, QUOTED.oid)], [lock], [], [], [hidden]]);
    const { steps } = planWith(snapshotStep, {}, { state: st });
    const { detail, log, run } = await dryApply(snapshotStep, steps, 0, { state: st, reader: r });
    expect(detail).toBe('2 session(s), 1 hidden backend(s), 1 lock(s), 0 blocked session(s), 1 prepared transaction(s)');
    expect(executed(log)).toEqual(steps[0]!.sql);
    expect(log).toEqual([]);
    expect(r.queries).toEqual([snapshotReads([MALLORY, QUOTED], st.server.major)]);
    const snap = run.report.snapshot!;
    expect(snap.sessions.map((s) => [s.pid, s.user, s.database])).toEqual([
      [4242, 'mallory', 'app'],
      [4343, 'x"y', 'app'],
    ]);
    expect(snap.locks.map((l) => [l.pid, l.role])).toEqual([[4343, QUOTED.name]]);
    expect(snap.preparedTransactions.map((p) => [p.gid, p.role])).toEqual([['px', MALLORY.name]]);
    expect(snap.hiddenBackends.map((h) => h.pid)).toEqual([5151]);
    expect(run.changed).toBe(false);
  });

  it('a reply that does not match the statements sent is an error, not a misattributed snapshot', async () => {
    const r = multiReader([[], []]);
    await expect(dryApply(snapshotStep, planWith(snapshotStep).steps, 0, { reader: r })).rejects.toThrow(
      /snapshot: 2 results to 5 statements/,
    );
  });

  it('blocked by a lock on a catalog (55P03): skipped, saying where the forensic columns come from instead', async () => {
    const r = reader(() => sqlError('canceling statement due to lock timeout', '55P03'));
    const err = await dryApply(snapshotStep, planWith(snapshotStep).steps, 0, { reader: r }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepSkipped);
    expect((err as Error).message).toBe(
      "blocked by a lock on a system catalog (canceling statement due to lock timeout [SQLSTATE 55P03]): the containment statement's terminate rows carry the sessions' forensic columns instead",
    );
  });

  it('read with the plan state (no prompt stood between): taken as it is, with no query of its own', async () => {
    const r = reader(() => new Error('no query expected'));
    const pre = {
      takenAt: '2030-01-01T00:00:00.000Z',
      sessions: [],
      hiddenBackends: [{ pid: 5151, via: 'virtualxid' as const, backendStart: null, clientAddr: null }],
      locks: [],
      blocking: [],
      preparedTransactions: [],
    };
    const { detail, log, run } = await dryApply(snapshotStep, planWith(snapshotStep).steps, 0, { reader: r, deps: { snapshot: pre } });
    expect(detail).toBe('0 session(s), 1 hidden backend(s), 0 lock(s), 0 blocked session(s), 0 prepared transaction(s)');
    expect(r.queries).toEqual([]);
    expect(log).toEqual([]);
    expect(run.report.snapshot).toBe(pre);
  });

  it('any other failure is a failure', async () => {
    const r = reader(() => sqlError('permission denied for view pg_stat_activity', '42501'));
    await expect(dryApply(snapshotStep, planWith(snapshotStep).steps, 0, { reader: r })).rejects.toMatchObject({ code: '42501' });
  });
});
