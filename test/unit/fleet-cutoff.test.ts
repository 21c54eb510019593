// Cutoff across nodes, pure parts: a standby's plan (no DDL, waits for replay first), which primary
// a standby follows, the order nodes are applied in, and the fleet exit code.
import { describe, expect, it } from 'vitest';
import type { OperatorFacts, RoleInfo } from '../../src/checks/types.js';
import { apply } from '../../src/playbook/apply.js';
import type { CutoffReport } from '../../src/record/cutoff-report.js';
import { applyAll, fleetExitCode, preflightAll, primaryOf, type PreparedNode } from '../../src/playbook/fleet.js';
import type { NodeOutcome } from '../../src/record/fleet-report.js';
import { nodesExitCode } from '../../src/pg/nodes.js';
import { DryRunExecutor } from '../../src/playbook/executor.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { buildPlan } from '../../src/playbook/plan.js';
import { preflight } from '../../src/playbook/preflight.js';
import { STANDBY_DDL, type PlanState } from '../../src/playbook/model.js';
import { REPLAY_POSITION } from '../../src/playbook/sql.js';
import { resolveConnParams } from '../../src/pg/conninfo.js';
import { quietFacts } from '../fixtures/facts.js';

// the shared quiet fixture, as a live superuser target named with a quote
const base = quietFacts();
const role: RoleInfo = { ...base.role, oid: 16500, name: 'Ma"llory', canLogin: true };
const operator: OperatorFacts = base.operator;
const params = resolveConnParams({ dsn: 'postgresql://postgres@db.example:5432/postgres' }, {});

function state(inRecovery: boolean): PlanState {
  return {
    server: { version: 'PostgreSQL 17', versionNum: 170000, major: 17, inRecovery, hbaFile: null, dataDirectory: null },
    targets: [role],
    prepared: [
      { gid: 'tx1', database: 'app', prepared: '2030-01-01', transaction: '700', ageSeconds: 5, locks: 2, holds: [], role: role.name },
    ],
    subscriptions: [{ role: role.name, name: 'sub1', database: 'app', enabled: true }],
    ownedDatabases: [{ role: role.name, databases: ['app'], shared: false }],
    hba: { file: null, skip: 'no file access', perRole: { [role.name]: null }, present: [] },
    adminOf: [role.name],
    administered: [],
  };
}

async function planFor(inRecovery: boolean, playbook = 'offboarding') {
  const pb = await loadPlaybook(playbook);
  return buildPlan(
    pb,
    state(inRecovery),
    operator,
    params,
    { roles: [role.name], reassignTo: 'heir' },
    { node: inRecovery ? 'replica' : 'primary' },
  );
}

function prepared(name: string, standby: boolean, sysid: string | null, cluster: string | null = null): PreparedNode {
  return {
    target: { name, params, cluster },
    client: null as never,
    state: state(standby),
    plan: null as never,
    operator,
    systemIdentifier: sysid,
    refusal: null,
  };
}

describe('a standby plan', () => {
  it('waits for replay before containing, terminates without ALTER, and skips every DDL step with the reason', async () => {
    const plan = await planFor(true);
    const actions = plan.steps.map((s) => s.action);
    expect(actions.indexOf('await_replay')).toBe(actions.indexOf('contain') - 1);
    expect(plan.steps.find((s) => s.action === 'await_replay')!.sql).toEqual([REPLAY_POSITION]);
    const contain = plan.steps.find((s) => s.action === 'contain')!;
    expect(contain.sql.join('\n')).not.toMatch(/ALTER|COMMIT/);
    expect(contain.sql.join('\n')).toMatch(/pg_terminate_backend/);
    for (const a of ['rollback_prepared', 'disable_subscriptions', 'reassign_owned', 'drop_owned', 'drop_role'] as const) {
      const steps = plan.steps.filter((s) => s.action === a);
      expect(steps.length, a).toBe(1);
      expect(steps[0]!.skip, a).toBe(STANDBY_DDL);
      expect(steps[0]!.sql, a).toEqual([]);
    }
    expect(plan.steps.every((s) => s.node === 'replica')).toBe(true);
  });

  it('the primary plan of the same playbook keeps its DDL and has no replay wait', async () => {
    const plan = await planFor(false);
    expect(plan.steps.map((s) => s.action)).not.toContain('await_replay');
    expect(plan.steps.find((s) => s.action === 'contain')!.sql.join('\n')).toMatch(/ALTER ROLE "Ma""llory" NOLOGIN/);
    expect(plan.steps.find((s) => s.action === 'rollback_prepared')!.sql).toEqual(["ROLLBACK PREPARED 'tx1'"]);
  });

  it('preflight refuses a standby whose primary is not in the run, and lets it through when it is', async () => {
    const plan = await planFor(true);
    expect(preflight(plan, state(true))?.message).toMatch(/standby, and its primary is not among the targets/);
    expect(preflight(plan, state(true), { primaryInRun: true })).toBeNull();
    // a standby runs no ALTER: CREATEROLE is not needed there
    const weak = { ...operator, superuser: false, createRole: false };
    expect(preflight({ ...plan, operator: weak }, state(true), { primaryInRun: true })).toBeNull();
    expect(preflight({ ...(await planFor(false)), operator: weak }, state(false))?.message).toMatch(/CREATEROLE/);
  });
});

/**
 * apply() on a standby plan through an executor that answers like a quiet standby: the replay
 * position from `replay(poll)`, empty terminate/hidden results, the role already NOLOGIN.
 */
async function applyOnStandby(replayTarget: string | null, replay: (poll: number) => Record<string, unknown>) {
  const plan = await planFor(true, 'contain-only');
  const exec = new DryRunExecutor();
  let polls = 0;
  Object.assign(exec, {
    dryRun: false,
    run: async (step: { index: number; action: string; database: string | null }, stmt: string | { display: string }) => {
      const sql = typeof stmt === 'string' ? stmt : stmt.display;
      exec.log.push({ step: step.index, action: step.action, database: step.database, sql });
      if (sql === REPLAY_POSITION) return [{ command: 'SELECT', rowCount: 1, rows: [replay(++polls)] }];
      return [
        { command: 'SELECT', rowCount: 0, rows: [] },
        { command: 'SELECT', rowCount: 0, rows: [] },
        { command: 'SELECT', rowCount: 1, rows: [{ oid: role.oid, rolname: role.name, rolcanlogin: false, rolconnlimit: 0 }] },
      ];
    },
  });
  const report = await apply({
    plan,
    state: state(true),
    exec,
    reader: { query: async () => ({ rows: [] }) } as never,
    params,
    operator: { user: 'postgres', osUser: 'ops', host: 'box', superuser: true },
    replayTarget: Promise.resolve(replayTarget),
  });
  return { report, polls, actions: exec.log.map((l) => l.action) };
}

describe('a standby apply', () => {
  it('polls the replay position until it reaches the primary commit, then terminates', async () => {
    const { report, polls, actions } = await applyOnStandby('0/10', (poll) => ({
      replayed: '0/10',
      caught_up: poll >= 3,
      lag_bytes: poll >= 3 ? 0 : 96,
    }));
    expect(polls).toBe(3);
    expect(report.replay).toMatchObject({ target: '0/10', caughtUp: true, lagBytes: 0 });
    expect(actions.lastIndexOf('await_replay')).toBeLessThan(actions.indexOf('contain'));
  });

  it('a primary that never committed: the wait fails at once, exposure is reported, the sessions are still terminated', async () => {
    const { report, polls, actions } = await applyOnStandby(null, () => ({}));
    expect(polls).toBe(0);
    expect(report.steps.find((s) => s.action === 'await_replay')!.status).toBe('failed');
    expect(report.steps.find((s) => s.action === 'contain')!.status).toBe('done');
    expect(report.exposure.join('\n')).toMatch(/still accepts new logins/);
    expect(report.exitCode).toBe(3);
    expect(actions).toContain('contain');
  });
});

describe('nodes', () => {
  it('a standby follows the primary with its system identifier, else the one of its fleet cluster', () => {
    const p1 = prepared('p1', false, '111');
    const p2 = prepared('p2', false, '222', 'billing');
    expect(primaryOf(prepared('s1', true, '111'), [p1, p2])).toBe(p1);
    expect(primaryOf(prepared('s2', true, null, 'billing'), [p1, p2])).toBe(p2);
    expect(primaryOf(prepared('s3', true, '333'), [p1, p2])).toBeNull();
  });

  it('a standby whose primary may be among the nodes not reached is contained, not refused; one with no primary named is refused', async () => {
    const standby = async (cluster: string | null) => ({ ...prepared('s', true, '9', cluster), plan: await planFor(true) });
    const down = (cluster: string | null) => ({ name: 'p', params, cluster });
    const lone = await standby(null);
    preflightAll([lone]);
    expect(lone.refusal?.message).toMatch(/its primary is not among the targets/);
    const withDown = await standby(null);
    preflightAll([withDown], [down(null)]);
    expect(withDown.refusal).toBeNull();
    const sameCluster = await standby('billing');
    preflightAll([sameCluster], [down('billing')]);
    expect(sameCluster.refusal).toBeNull();
    // another cluster's node being down says nothing about this standby's primary
    const otherCluster = await standby('billing');
    preflightAll([otherCluster], [down('search')]);
    expect(otherCluster.refusal?.message).toMatch(/its primary is not among the targets/);
  });

  it('applies primaries before standbys, hands each standby its primary commit position, never deadlocks at concurrency 1', async () => {
    const p = prepared('p', false, '1');
    const s = prepared('s', true, '1');
    const order: string[] = [];
    const got: (string | null)[] = [];
    const results = await applyAll([s, p], 1, async (n, hooks) => {
      order.push(n.target.name);
      if (hooks.replayTarget) got.push(await hooks.replayTarget);
      hooks.onCommitted?.('0/ABC');
      return { exitCode: 0 } as CutoffReport;
    });
    expect(order).toEqual(['p', 's']);
    expect(got).toEqual(['0/ABC']);
    expect(results.size).toBe(2);
  });

  it('a primary that fails releases its standbys with null', async () => {
    const p = prepared('p', false, '1');
    const s = prepared('s', true, '1');
    let seen: string | null | undefined;
    const results = await applyAll([p, s], 2, async (n, hooks) => {
      if (n === p) throw new Error('boom');
      seen = await hooks.replayTarget;
      return { exitCode: 0 } as CutoffReport;
    });
    expect(seen).toBeNull();
    expect(results.get(p)).toBeInstanceOf(Error);
  });

  it('exit code: 2 when nothing could be acted on, 3 when some nodes failed, 1 exposure, 0 all contained', () => {
    const o = (status: NodeOutcome['status']): NodeOutcome => ({
      node: status,
      cluster: null,
      role: null,
      status,
      error: null,
      report: null,
    });
    expect(fleetExitCode([o('contained'), o('contained')])).toBe(0);
    expect(fleetExitCode([o('contained'), o('absent')])).toBe(0);
    expect(fleetExitCode([o('contained'), o('exposed')])).toBe(1);
    expect(fleetExitCode([o('contained'), o('unreachable'), o('exposed')])).toBe(3);
    expect(fleetExitCode([o('contained'), o('partial')])).toBe(3);
    expect(fleetExitCode([o('unreachable'), o('refused')])).toBe(2);
    expect(fleetExitCode([o('absent'), o('absent')])).toBe(2);
    expect(fleetExitCode([o('planned'), o('planned')])).toBe(0);
    // a node without the role answered: with another down, that is partial, as for inspect/verify/sessions
    expect(fleetExitCode([o('absent'), o('unreachable')])).toBe(3);
    expect(nodesExitCode([{ status: 'absent' }, { status: 'unreachable' }])).toBe(3);
    // nothing answered: 2 even when a PgBouncer console is down as well
    expect(fleetExitCode([o('unreachable'), o('failed')], [{ status: 'unreachable' }])).toBe(2);
    expect(fleetExitCode([o('contained')], [{ status: 'unreachable' }])).toBe(3);
    expect(fleetExitCode([o('contained')], [{ status: 'exposed' }])).toBe(1);
  });

  it('inspect, verify and sessions share the rule: 2 none answered or the role is nowhere, 3 some failed, else the command decides', () => {
    expect(nodesExitCode([{ status: 'ok' }, { status: 'ok' }])).toBeNull();
    expect(nodesExitCode([{ status: 'ok' }, { status: 'absent' }])).toBeNull();
    expect(nodesExitCode([{ status: 'ok' }, { status: 'unreachable' }])).toBe(3);
    expect(nodesExitCode([{ status: 'failed' }, { status: 'unreachable' }])).toBe(2);
    expect(nodesExitCode([{ status: 'absent' }, { status: 'absent' }])).toBe(2);
  });
});
