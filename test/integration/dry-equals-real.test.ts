// Dry run equals real run, for every step kind, on real servers: a playbook with every playbook
// action (sql included) run as `cutoff --dry-run --json`, then for real on the same role (a dry run
// changes nothing, so it is prepared identically), the CLI as a user runs it. Step for step the two
// reports run the same statements in the same databases, and each dry step's statements are the
// ones it planned. A primary with a streaming standby does the same for the standby's await_replay.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ident } from '../../src/pg/quote.js';
import { REPLAY_POSITION } from '../../src/playbook/sql.js';
import { STEP_KINDS } from '../../src/playbook/steps/index.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, startClusterWithHba, startStandby, waitForReplay, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

interface Step {
  index: number;
  action: string;
  status: string;
  database: string | null;
  role: string | null;
  sql: string[];
  executed: string[];
  detail: string | null;
}
interface Report {
  dryRun: boolean;
  exitCode: number;
  steps: Step[];
}
interface Fleet {
  kind: string;
  exitCode: number;
  nodes: { node: string; role: string; status: string; report: Report | null }[];
}

const ROLE = 'Leaver "o"';
const PW = 'pw-leaver';
const HEIR = 'heir';
const SQL_STATEMENT = 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}';

const PLAYBOOK = `# every playbook action, in an order the schema accepts
name: every-step
description: every playbook step kind once
reason: offboarding
steps:
  - action: snapshot
  - action: contain
  - action: settle
  - action: hba_reject
  - action: rollback_prepared
  - action: check_locks
  - action: disable_subscriptions
  - action: sql
    description: take the role's table privileges in schema public
    statements: ['${SQL_STATEMENT}']
    database: each
  - action: reassign_owned
  - action: drop_owned
  - action: drop_role
  - action: verify
`;

const shape = (r: Report) => r.steps.map((s) => ({ action: s.action, database: s.database, executed: s.executed }));
/** What a dry step records: its planned statements, except the read-only ones that plan none of their own. */
const plannedOf = (r: Report) =>
  r.steps.map((s) => ({ action: s.action, database: s.database, executed: s.status === 'skipped' ? [] : s.sql }));

describe.each(MAJORS)('dry run equals real run, every step kind (PostgreSQL %i)', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-dry-real-'));
  const file = path.join(tmp, 'every-step.yaml');
  const cutoff = (...args: string[]) =>
    runCli(['cutoff', ROLE, '--playbook', file, '--reassign-to', HEIR, '--json', ...args, '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });

  beforeAll(async () => {
    writeFileSync(file, PLAYBOOK);
    cl = await startClusterWithHba(major);
    const r = ident(ROLE);
    await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
    // 14 and 15: a subscription's owner must be a superuser, for REASSIGN OWNED's new owner as for ALTER ... OWNER TO
    await cl.sql(`CREATE ROLE ${HEIR} NOLOGIN${major < 16 ? ' SUPERUSER' : ''}`);
    // objects of the role in a second database, privileges in this one
    await cl.sql('CREATE DATABASE app');
    const app = await cl.connectAs('postgres', cl.password, 'app');
    await app.query('CREATE TABLE loot (v text)');
    await app.query(`ALTER TABLE loot OWNER TO ${r}`);
    await app.end();
    await cl.sql('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await cl.sql('INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 5) g');
    await cl.sql(`GRANT SELECT, UPDATE ON accounts TO ${r}`);
    // a prepared transaction of the role, its session gone
    const c = await cl.connectAs(ROLE, PW);
    await c.query('BEGIN');
    await c.query('UPDATE accounts SET balance = 1 WHERE id = 1');
    await c.query(`PREPARE TRANSACTION 'leaver-1'`);
    await c.end();
    // a subscription of the role: never connected, so no worker and no slot to drop
    await cl.sql(`CREATE SUBSCRIPTION leaver_sub CONNECTION 'dbname=nonexistent' PUBLICATION p WITH (connect = false)`);
    // 14 and 15 accept only a superuser as the new owner; 16+ any role the operator can SET ROLE to
    if (major < 16) await cl.sql(`ALTER ROLE ${r} SUPERUSER`);
    await cl.sql(`ALTER SUBSCRIPTION leaver_sub OWNER TO ${r}`);
    if (major < 16) await cl.sql(`ALTER ROLE ${r} NOSUPERUSER`);
    await waitFor(
      async () => (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [ROLE]))[0]!.n === 0,
      5000,
      'the role to disconnect',
    );
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('cutoff --dry-run, then --yes: the same statements in the same databases, step for step, each as planned', async () => {
    const dryRes = await cutoff('--dry-run');
    expect(dryRes.code, dryRes.stderr).toBe(0);
    const dry = jsonDoc<Report>(dryRes);
    expect(dry.dryRun).toBe(true);

    // every playbook action is there, and none is skipped: each really ran (or would have) its statements
    const actions = new Set(dry.steps.map((s) => s.action));
    expect([...actions].sort()).toEqual(
      Object.keys(STEP_KINDS)
        .filter((a) => a !== 'await_replay')
        .sort(),
    );
    expect(dry.steps.filter((s) => s.status === 'skipped').map((s) => [s.action, s.detail])).toEqual([]);
    expect(dry.steps.map((s) => s.status)).toEqual(dry.steps.map((s) => (s.action === 'snapshot' ? 'done' : 'planned')));
    // a dry step's statements are the ones it planned
    expect(shape(dry)).toEqual(plannedOf(dry));
    expect(dry.steps.find((s) => s.action === 'rollback_prepared')!.executed).toEqual([`ROLLBACK PREPARED 'leaver-1'`]);
    expect(dry.steps.find((s) => s.action === 'disable_subscriptions')!.executed[0]).toBe('ALTER SUBSCRIPTION "leaver_sub" DISABLE');
    const sqlSteps = dry.steps.filter((s) => s.action === 'sql');
    expect(sqlSteps.map((s) => s.database).sort()).toEqual(['app', 'postgres']);
    expect(sqlSteps.map((s) => s.executed)).toEqual(sqlSteps.map(() => [`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "Leaver ""o"""`]));
    expect(dry.steps.filter((s) => s.action === 'reassign_owned').map((s) => s.executed)).toEqual([
      [`REASSIGN OWNED BY "Leaver ""o""" TO "heir"`],
      [`REASSIGN OWNED BY "Leaver ""o""" TO "heir"`],
    ]);
    expect(dry.steps.find((s) => s.action === 'drop_role')!.executed).toEqual([`DROP ROLE "Leaver ""o"""`]);
    expect(dry.steps.find((s) => s.action === 'hba_reject')!.executed[0]).toMatch(/^-- prepend reject lines for "Leaver ""o""" to \//);
    // the dry run changed nothing
    expect(await cl.sql(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, [ROLE])).toEqual([{ rolcanlogin: true }]);
    expect(await cl.sql(`SELECT gid FROM pg_prepared_xacts`)).toEqual([{ gid: 'leaver-1' }]);

    const realRes = await cutoff('--yes');
    expect(realRes.code, realRes.stdout.slice(0, 4000) + realRes.stderr).toBe(0);
    const real = jsonDoc<Report>(realRes);
    expect(real.dryRun).toBe(false);
    expect(real.steps.filter((s) => s.status !== 'done').map((s) => [s.action, s.status, s.detail])).toEqual([]);
    expect(shape(real)).toEqual(shape(dry));

    // and it did what it said
    expect(await cl.sql(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [ROLE])).toEqual([]);
    expect(await cl.sql(`SELECT gid FROM pg_prepared_xacts`)).toEqual([]);
    expect(await cl.sql(`SELECT subenabled, pg_get_userbyid(subowner) AS owner FROM pg_subscription WHERE subname = 'leaver_sub'`)).toEqual(
      [{ subenabled: false, owner: HEIR }],
    );
  });
});

describe.each(MAJORS)('dry run equals real run on a standby: await_replay (PostgreSQL %i)', (major) => {
  let primary: TestCluster;
  let standby: TestCluster;
  const R = 'Stand "by"';
  const cutoff = (...args: string[]) =>
    runCli(['cutoff', R, '--json', ...args, '--target', primary.dsn(), '--target', standby.dsn()], {}, { timeoutMs: 90_000 });

  beforeAll(async () => {
    // the default pg_hba.conf: it admits the standby's replication connection
    primary = await startCluster(major);
    await primary.sql(`CREATE ROLE ${ident(R)} LOGIN PASSWORD 'pw-s'`);
    standby = await startStandby(primary);
    await waitForReplay(primary, standby);
  });

  afterAll(async () => {
    await standby?.destroyAll();
    await primary?.destroyAll();
  });

  it("the standby section's await_replay runs the position query it planned, dry and real; the sections match step for step", async () => {
    const dryRes = await cutoff('--dry-run');
    expect(dryRes.code, dryRes.stderr).toBe(0);
    const dry = jsonDoc<Fleet>(dryRes);
    const realRes = await cutoff('--yes');
    expect(realRes.code, realRes.stdout.slice(0, 4000) + realRes.stderr).toBe(0);
    const real = jsonDoc<Fleet>(realRes);
    expect(real.nodes.map((n) => [n.role, n.status])).toEqual([
      ['primary', 'contained'],
      ['standby', 'contained'],
    ]);

    const section = (f: Fleet, role: string) => f.nodes.find((n) => n.role === role)!.report!;
    const [dryStandby, realStandby] = [section(dry, 'standby'), section(real, 'standby')];
    const wait = (r: Report) => r.steps.find((s) => s.action === 'await_replay')!;
    expect(wait(dryStandby).sql).toEqual([REPLAY_POSITION]);
    expect(wait(dryStandby).executed).toEqual([REPLAY_POSITION]);
    expect(wait(realStandby).executed).toEqual(wait(dryStandby).executed);
    expect(wait(realStandby).status).toBe('done');
    expect(wait(realStandby).detail).toMatch(/^replayed [0-9A-F]+\/[0-9A-F]+ after \d+ ms/);

    for (const role of ['primary', 'standby']) {
      const [d, r] = [section(dry, role), section(real, role)];
      expect(shape(d), role).toEqual(plannedOf(d));
      expect(shape(r), role).toEqual(shape(d));
    }
  });
});
