// The snapshot step kind: its plan (read-only, no statement), and its apply, which reads through
// the reader in a dry run as in a real one (readOnly), logs nothing through the executor, and gives
// way under a lock on a system catalog.
import { describe, expect, it } from 'vitest';
import { ROLE_SESSIONS_SQL } from '../../../src/checks/sessions.js';
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

describe('snapshot apply', () => {
  it("dry run: reads each target's sessions (and the rest) through the reader; the executor logs nothing, as planned", async () => {
    const st = planState({ targets: [MALLORY, QUOTED] });
    const r = reader((sql, values) =>
      sql === ROLE_SESSIONS_SQL ? [session(values![0] === MALLORY.oid ? 4242 : 4343, Number(values![0]))] : [],
    );
    const { steps } = planWith(snapshotStep, {}, { state: st });
    const { detail, log, run } = await dryApply(snapshotStep, steps, 0, { state: st, reader: r });
    expect(detail).toBe('2 session(s), 0 hidden backend(s), 0 lock(s), 0 blocked session(s), 0 prepared transaction(s)');
    expect(executed(log)).toEqual(steps[0]!.sql);
    expect(log).toEqual([]);
    expect(run.report.snapshot!.sessions.map((s) => [s.pid, s.user, s.database])).toEqual([
      [4242, 'mallory', 'app'],
      [4343, 'x"y', 'app'],
    ]);
    // per target: sessions, locks, blocking, prepared; then the hidden backends once
    expect(r.queries).toHaveLength(9);
    expect(run.changed).toBe(false);
  });

  it('blocked by a lock on a catalog (55P03): skipped, saying where the forensic columns come from instead', async () => {
    const r = reader(() => sqlError('canceling statement due to lock timeout', '55P03'));
    const err = await dryApply(snapshotStep, planWith(snapshotStep).steps, 0, { reader: r }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepSkipped);
    expect((err as Error).message).toBe(
      "blocked by a lock on a system catalog (canceling statement due to lock timeout [SQLSTATE 55P03]): the containment statement's terminate rows carry the sessions' forensic columns instead",
    );
  });

  it('any other failure is a failure', async () => {
    const r = reader(() => sqlError('permission denied for view pg_stat_activity', '42501'));
    await expect(dryApply(snapshotStep, planWith(snapshotStep).steps, 0, { reader: r })).rejects.toMatchObject({ code: '42501' });
  });
});
