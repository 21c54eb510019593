// Every step kind together, as a playbook: the position rules as the schema enforces them (exit 2
// naming file, line and field), and apply()'s dry run over a plan with every kind (sql included):
// each step's executed statements are its planned ones, on a primary and on a standby (await_replay).
import { describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../../src/errors.js';
import { apply } from '../../../src/playbook/apply.js';
import { DryRunExecutor } from '../../../src/playbook/executor.js';
import type { PlanState } from '../../../src/playbook/model.js';
import { buildPlan } from '../../../src/playbook/plan.js';
import { parsePlaybook } from '../../../src/playbook/schema.js';
import { STEP_KINDS } from '../../../src/playbook/steps/index.js';
import { MALLORY, PARAMS, planState, QUOTED, reader, standbyState, SUPERUSER } from './fixtures.js';

const EVERY = `name: every-kind
reason: offboarding
steps:
  - action: snapshot
  - action: contain
  - action: settle
    interval_ms: 1
  - action: hba_reject
  - action: rollback_prepared
  - action: check_locks
  - action: disable_subscriptions
  - action: reassign_owned
  - action: drop_owned
  - action: sql
    statements: ['REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}', 'SELECT 1']
    database: each
  - action: drop_role
  - action: verify
`;

function refusal(steps: string[]): string {
  const text = `name: t\nreason: compromise\nsteps:\n${steps.map((s) => `  - action: ${s}\n`).join('')}`;
  try {
    parsePlaybook(text, 't.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(PgrevokeError);
    expect((e as PgrevokeError).exitCode).toBe(2);
    return (e as Error).message;
  }
  return 'accepted';
}

describe('the position rules, as the playbook schema applies them', () => {
  it.each([
    [['settle', 'contain'], 'invalid playbook t.yaml:4: steps[0].action: "settle" must come after "contain"'],
    [
      ['contain', 'hba_reject', 'settle'],
      'invalid playbook t.yaml:5: steps[1].action: "hba_reject" must come after "settle": the configuration reload wakes backends sleeping in the post-authentication window, which would then run as the role',
    ],
    [
      ['hba_reject', 'contain'],
      expect.stringMatching(/^invalid playbook t\.yaml:4: steps\[0\]\.action: "hba_reject" must come after "contain": /),
    ],
    [['rollback_prepared', 'contain'], 'invalid playbook t.yaml:4: steps[0].action: "rollback_prepared" must come after "contain"'],
    [['check_locks', 'contain'], 'invalid playbook t.yaml:4: steps[0].action: "check_locks" must come after "contain"'],
    [['disable_subscriptions', 'contain'], 'invalid playbook t.yaml:4: steps[0].action: "disable_subscriptions" must come after "contain"'],
    [['contain', 'drop_role'], 'invalid playbook t.yaml:5: steps[1].action: "drop_role" needs "reassign_owned" and "drop_owned" before it'],
    [
      ['contain', 'reassign_owned', 'drop_role', 'drop_owned'],
      'invalid playbook t.yaml:6: steps[2].action: "drop_role" needs "reassign_owned" and "drop_owned" before it',
    ],
    [['contain', 'settle', 'settle'], 'invalid playbook t.yaml:6: steps[2].action: "settle" appears twice'],
    [['snapshot', 'verify'], 'invalid playbook t.yaml:4: steps: a playbook needs one "contain" step'],
  ])('%j: %s', (steps, message) => {
    expect(refusal(steps)).toEqual(message);
  });

  it('accepted where they stand right; snapshot and verify anywhere', () => {
    expect(refusal(['verify', 'contain', 'settle', 'hba_reject', 'snapshot'])).toBe('accepted');
    expect(refusal(['contain', 'drop_owned', 'reassign_owned', 'drop_role'])).toBe('accepted');
    expect(parsePlaybook(EVERY, 'every.yaml').steps.map((s) => s.action)).toEqual(
      Object.keys(STEP_KINDS)
        .filter((a) => a !== 'await_replay')
        .sort((a, b) => EVERY.indexOf(`action: ${a}\n`) - EVERY.indexOf(`action: ${b}\n`)),
    );
  });
});

/** A role with something of every kind: a prepared transaction, a subscription, objects in two databases. */
function loaded(): PlanState {
  return planState({
    targets: [MALLORY, QUOTED],
    prepared: [{ gid: 'tx1', database: 'app', prepared: 'x', transaction: '700', ageSeconds: 1, locks: 1, holds: [], role: 'mallory' }],
    subscriptions: [{ role: 'x"y', name: 'sub1', database: 'reports', enabled: true }],
    ownedDatabases: [
      { role: 'mallory', databases: ['app', 'reports'], shared: false },
      { role: 'x"y', databases: ['reports'], shared: false },
    ],
  });
}

async function dryRun(state: PlanState) {
  const playbook = parsePlaybook(EVERY, 'every.yaml');
  const plan = buildPlan(playbook, state, SUPERUSER, PARAMS, { roles: ['mallory', 'x"y'], reassignTo: 'heir' });
  const exec = new DryRunExecutor();
  const report = await apply({
    plan,
    state,
    exec,
    reader: reader(),
    params: PARAMS,
    operator: { user: 'postgres', osUser: 'ops', host: 'box', superuser: true },
    hbaServerLock: () => Promise.resolve({ release: () => Promise.resolve() }),
  });
  return { plan, report, exec };
}

describe('dry run over every kind: the statements executed are the statements planned', () => {
  it('on a primary: step for step, in order, with the planned databases', async () => {
    const { plan, report, exec } = await dryRun(loaded());
    expect(report.exitCode).toBe(0);
    expect(report.steps.map((s) => [s.action, s.status])).toEqual([
      ['snapshot', 'done'],
      ['contain', 'planned'],
      ['settle', 'planned'],
      ['hba_reject', 'planned'],
      ['rollback_prepared', 'planned'],
      ['check_locks', 'planned'],
      ['disable_subscriptions', 'planned'],
      ['reassign_owned', 'planned'],
      ['reassign_owned', 'planned'],
      ['reassign_owned', 'planned'],
      ['drop_owned', 'planned'],
      ['drop_owned', 'planned'],
      ['drop_owned', 'planned'],
      ['sql', 'planned'],
      ['sql', 'planned'],
      ['sql', 'planned'],
      ['drop_role', 'planned'],
      ['drop_role', 'planned'],
      ['verify', 'planned'],
    ]);
    for (const s of report.steps) expect(s.executed, `${s.index} ${s.action}`).toEqual(s.sql);
    expect(report.steps.map((s) => s.sql)).toEqual(plan.steps.map((s) => s.sql));
    // every statement logged belongs to its step, in the step's database (the subscription's worker terminate on the main connection)
    for (const l of exec.log) {
      const s = report.steps[l.step]!;
      expect(l.action).toBe(s.action);
      expect(l.database).toBe(s.action === 'disable_subscriptions' && l.sql.startsWith('SELECT') ? null : s.database);
    }
    const sql = report.steps.filter((s) => s.action === 'sql');
    expect(sql.map((s) => [s.role, s.database, s.executed[0]])).toEqual([
      ['mallory', 'app', 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "mallory"'],
      ['mallory', 'reports', 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "mallory"'],
      ['x"y', 'reports', 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "x""y"'],
    ]);
    expect(sql.map((s) => s.detail)).toEqual([
      'would run 2 statement(s) in app',
      'would run 2 statement(s) in reports',
      'would run 2 statement(s) in reports',
    ]);
  });

  it('on a standby: await_replay before contain, DDL skipped with nothing executed, the rest as planned', async () => {
    const { report } = await dryRun(standbyState(loaded()));
    const actions = report.steps.map((s) => s.action);
    expect(actions.slice(0, 3)).toEqual(['snapshot', 'await_replay', 'contain']);
    for (const s of report.steps) expect(s.executed, `${s.index} ${s.action}`).toEqual(s.status === 'skipped' ? [] : s.sql);
    expect(report.steps.filter((s) => s.status === 'skipped').map((s) => s.action)).toEqual([
      'rollback_prepared',
      'disable_subscriptions',
      'reassign_owned',
      'drop_owned',
      'sql',
      'sql',
      'drop_role',
    ]);
    expect(report.steps.find((s) => s.action === 'await_replay')!.executed).toHaveLength(1);
  });
});
