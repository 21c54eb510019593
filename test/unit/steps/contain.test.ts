// The contain step kind: its plan (one round trip: NOLOGIN commits before any terminate; on a
// standby await_replay first and no ALTER), its options, its dry run (the executor logs exactly
// the planned statement), a scripted real run, and its inverse for restore.
import { describe, expect, it } from 'vitest';
import { contain, containStandby, REPLAY_POSITION } from '../../../src/playbook/sql.js';
import { containStep } from '../../../src/playbook/steps/contain.js';
import {
  dryApply,
  executed,
  MALLORY,
  planState,
  planWith,
  playbookStep,
  QUOTED,
  roleInfo,
  rows,
  runOf,
  Scripted,
  source,
  restoreCtx,
  standbyState,
} from './fixtures.js';

const BOSS = roleInfo('boss', 16502, { superuser: true, createRole: true });

describe('contain plan', () => {
  it('one step, one statement: SET, the ALTER per target, COMMIT, then terminate and the hidden scan', () => {
    const st = planState({ targets: [MALLORY, QUOTED] });
    const { steps, warnings, exposure } = planWith(containStep, playbookStep(containStep), { state: st });
    expect(steps).toHaveLength(1);
    const [s] = steps;
    expect(s).toMatchObject({ action: 'contain', database: null, role: null });
    expect(s!.sql).toEqual([contain(st.targets, 16, { strip: true, rotatePassword: false }).display]);
    const text = s!.sql[0]!;
    expect(text.split(';\n').slice(0, 5)).toEqual([
      'SET LOCAL synchronous_commit = local',
      "SET LOCAL lock_timeout = '250ms'",
      'ALTER ROLE "mallory" NOLOGIN CONNECTION LIMIT 0',
      'ALTER ROLE "x""y" NOLOGIN CONNECTION LIMIT 0',
      'COMMIT',
    ]);
    expect(text.indexOf('COMMIT')).toBeLessThan(text.indexOf('pg_terminate_backend'));
    expect(text).toContain(`a.usesysid = ANY('{16500,16501}'::oid[])`);
    expect(s!.reason).toMatch(/^one simple-query round trip: NOLOGIN commits before any session is terminated/);
    expect(warnings).toEqual([]);
    expect(exposure).toEqual([]);
  });

  it('a superuser target loses SUPERUSER and CREATEROLE too, unless stripping is off', () => {
    const st = planState({ targets: [BOSS] });
    expect(planWith(containStep, {}, { state: st }).steps[0]!.sql[0]).toContain(
      'ALTER ROLE "boss" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE;\nCOMMIT',
    );
    const kept = planWith(containStep, {}, { state: st, options: { stripPrivileges: false } }).steps[0]!.sql[0]!;
    expect(kept).toContain('ALTER ROLE "boss" NOLOGIN CONNECTION LIMIT 0;\nCOMMIT');
    expect(kept).not.toContain('NOSUPERUSER');
  });

  it('a rotated password shows masked in the plan, never its verifier', () => {
    const sql = planWith(containStep, {}, { options: { rotatePassword: true } }).steps[0]!.sql[0]!;
    expect(sql).toContain(`ALTER ROLE "mallory" NOLOGIN CONNECTION LIMIT 0;\nALTER ROLE "mallory" PASSWORD '*****';\nCOMMIT`);
    expect(sql).not.toContain('SCRAM-SHA-256');
  });

  it('on a standby: await_replay first, then a terminate without ALTER or COMMIT', () => {
    const st = standbyState({ targets: [MALLORY] });
    const { steps } = planWith(containStep, {}, { state: st });
    expect(steps.map((s) => [s.action, s.sql])).toEqual([
      ['await_replay', [REPLAY_POSITION]],
      ['contain', [containStandby([MALLORY.oid], 16).display]],
    ]);
    expect(steps[1]!.sql[0]).not.toMatch(/ALTER|COMMIT/);
    expect(steps[1]!.sql[0]).toMatch(/^SET LOCAL lock_timeout = '250ms';\nSELECT .*pg_terminate_backend\(a\.pid\)/s);
  });
});

describe('contain options and position', () => {
  it('strip_privileges and rotate_password from the step, --rotate-password over it', () => {
    expect(containStep.options(playbookStep(containStep), { roles: [] })).toEqual({ rotatePassword: false, stripPrivileges: true });
    expect(containStep.options(playbookStep(containStep, { strip_privileges: false, rotate_password: true }), { roles: [] })).toEqual({
      rotatePassword: true,
      stripPrivileges: false,
    });
    expect(containStep.options(playbookStep(containStep), { roles: [], rotatePassword: true }).rotatePassword).toBe(true);
  });

  it('has no position rule of its own (the playbook needs exactly one, checked by the schema) and is not repeatable', () => {
    expect('order' in containStep).toBe(false);
    expect('repeatable' in containStep).toBe(false);
    expect(() => playbookStep(containStep, { strip_privileges: 'yes' })).toThrow();
  });
});

describe('contain apply', () => {
  it('dry run: the executor logs exactly the planned statement, on the main connection; nothing is committed', async () => {
    const st = planState({ targets: [MALLORY, BOSS] });
    const { steps } = planWith(containStep, {}, { state: st });
    const { detail, log, run, step } = await dryApply(containStep, steps, 0, { state: st });
    expect(detail).toBe('would commit NOLOGIN, then terminate every backend of the role(s) and list hidden backends');
    expect(executed(log)).toEqual(step.sql);
    expect(log).toEqual([{ step: 0, action: 'contain', database: null, sql: steps[0]!.sql[0] }]);
    expect(run.changed).toBe(false);
    expect(run.cleanScans).toBe(1);
    expect(run.report.contain).toEqual({ attempts: 1, blockers: [] });
    expect(run.report.committedAt).toBeNull();
  });

  it('dry run with a rotated password: the log is as masked as the plan', async () => {
    const { steps } = planWith(containStep, {}, { options: { rotatePassword: true } });
    const { log } = await dryApply(containStep, steps, 0, { options: { rotatePassword: true } });
    expect(executed(log)).toEqual(steps[0]!.sql);
    expect(log[0]!.sql).toContain(`PASSWORD '*****'`);
  });

  it('dry run on a standby: the terminate statement as planned', async () => {
    const st = standbyState();
    const { steps } = planWith(containStep, {}, { state: st });
    const { detail, log } = await dryApply(containStep, steps, 1, { state: st });
    expect(detail).toBe('would terminate every backend of the role(s) on this standby and list hidden backends');
    expect(executed(log)).toEqual(steps[1]!.sql);
  });

  it('real run (scripted): the same statement; the commit position, the terminated rows and the hidden suspects recorded', async () => {
    const { steps } = planWith(containStep, {});
    let committedLsn: string | null | undefined;
    const exec = new Scripted(() => [
      rows(),
      rows({ committed_at: '2030-01-01 00:00:00+00', commit_lsn: '0/3000100' }),
      rows({ pid: 4242, usesysid: MALLORY.oid, usename: 'mallory', datname: 'app', state: 'active', query: 'SELECT 1', terminated: true }),
      rows({ pid: 4343, via: 'virtualxid', backend_start: null, client_addr: '198.51.100.9' }),
    ]);
    const run = runOf(exec, steps, { deps: { onCommitted: (lsn) => (committedLsn = lsn) } });
    const detail = await containStep.apply(run, run.report.steps[0]!);
    expect(detail).toBe(
      'NOLOGIN committed for 1 role(s); terminated 1 backend(s) in the same round trip; 1 hidden backend(s) right after the commit (suspects)',
    );
    expect(executed(exec.log)).toEqual(steps[0]!.sql);
    expect(run.changed).toBe(true);
    expect([run.report.committedAt, run.report.commitLsn, committedLsn]).toEqual(['2030-01-01 00:00:00+00', '0/3000100', '0/3000100']);
    expect(run.report.terminated.map((t) => [t.pid, t.role, t.database, t.signalled, t.hidden])).toEqual([
      [4242, 'mallory', 'app', true, false],
    ]);
    expect([...run.suspects.keys()]).toEqual([4343]);
    expect(run.cleanScans).toBe(0);
  });
});

describe('contain inverse', () => {
  const done = [{ action: 'contain', status: 'done', sql: ['ALTER ROLE "mallory" NOLOGIN CONNECTION LIMIT 0'] }];

  it('LOGIN and the connection limit back as they were; sessions stay terminated', () => {
    expect(containStep.inverse(restoreCtx(source(done)))).toEqual({
      alter: 'ALTER ROLE "mallory" LOGIN CONNECTION LIMIT -1',
      notes: ['terminated sessions stay terminated: clients must reconnect'],
    });
  });

  it('a rotated password cannot come back: said first', () => {
    const rotated = [
      {
        action: 'contain',
        status: 'done',
        sql: [`ALTER ROLE "mallory" NOLOGIN CONNECTION LIMIT 0;\nALTER ROLE "mallory" PASSWORD '*****'`],
      },
    ];
    expect(containStep.inverse(restoreCtx(source(rotated))).notes).toEqual([
      'the password was rotated: the old one cannot come back; set a new one with ALTER ROLE ... PASSWORD',
      'terminated sessions stay terminated: clients must reconnect',
    ]);
  });

  it('SUPERUSER/CREATEROLE come back only where the cutoff stripped them, and only with a record behind the report', () => {
    const sup = source(done, {
      roles: [
        {
          name: 'mallory',
          oid: 16500,
          before: { canLogin: true, superuser: true, createRole: true, connectionLimit: 5, validUntil: null },
        },
      ],
    });
    expect(containStep.inverse(restoreCtx(sup, { stripped: true })).alter).toBe(
      'ALTER ROLE "mallory" LOGIN CONNECTION LIMIT 5 SUPERUSER CREATEROLE',
    );
    const notStripped = containStep.inverse(restoreCtx(sup, { stripped: false }));
    expect(notStripped.alter).toBe('ALTER ROLE "mallory" LOGIN CONNECTION LIMIT 5');
    expect(notStripped.notes).toContain(
      'the cutoff did not strip SUPERUSER/CREATEROLE (its plan has no NOSUPERUSER for the role): restore does not grant them',
    );
    expect(containStep.inverse(restoreCtx(sup, { stripped: false, unbacked: true })).notes!.at(-1)).toMatch(
      /^no record in the state directory backs this report, and a report alone is no evidence/,
    );
  });

  it('on a standby nothing is altered (it comes by replay)', () => {
    const part = containStep.inverse(restoreCtx(source(done), { standby: true }));
    expect(part.alter).toBeNull();
    expect(part.notes).toContain(
      "standby: LOGIN, the connection limit and the attributes come back by replay once the primary's section is restored",
    );
  });

  it.each([
    ['skipped', 'not run'],
    ['failed', 'nothing was committed: permission denied to alter role'],
  ])('a contain step %s that changed nothing: the role is left as it is', (status, detail) => {
    const part = containStep.inverse(restoreCtx(source([{ action: 'contain', status, detail }])));
    expect(part.alter).toBeNull();
    expect(part.notes).toContain(
      'the cutoff never committed NOLOGIN (its contain step did not run or committed nothing): the role is left as it is',
    );
  });

  it('a contain step that failed after its COMMIT is undone', () => {
    const part = containStep.inverse(
      restoreCtx(source([{ action: 'contain', status: 'failed', detail: 'NOLOGIN committed for 1 role(s); ...' }])),
    );
    expect(part.alter).toBe('ALTER ROLE "mallory" LOGIN CONNECTION LIMIT -1');
  });
});
