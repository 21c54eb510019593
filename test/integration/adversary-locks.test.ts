// An attacker who knows pgrevoke: holds the locks cutoff's ALTER ROLE needs, in an open
// transaction, from sessions that reconnect as soon as they are cut; interrupts that must reach the
// server; an interrupted settle that must not hide what is still open. Real servers, the CLI as a
// subprocess.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Attacker } from '../../src/demo/attacker.js';
import { LockHolder } from '../../src/demo/lock-holder.js';
import { PgExecutor } from '../../src/playbook/executor.js';
import { Interrupt } from '../../src/playbook/interrupt.js';
import type { PlanStep } from '../../src/playbook/model.js';
import { resolveConnParams } from '../../src/pg/conninfo.js';
import { ident } from '../../src/pg/quote.js';
import { runCli, startCli, startOnTerminal, jsonDoc } from '../helpers/cli.js';
import { lockWaiters, MAJORS, parkLogin, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

interface Json {
  [k: string]: unknown;
}
type Step = { action: string; status: string; detail: string | null };

describe.each(MAJORS)('cutoff against an attacker holding locks, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-adversary-'));
  const cleanups: (() => Promise<unknown>)[] = [];

  const createRole = (name: string, extra = '') => cl.sql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD 'pw-${name}' ${extra}`);
  const pw = (name: string) => `pw-${name}`;
  const role = async (name: string) =>
    (
      await cl.sql<{ rolcanlogin: boolean; rolsuper: boolean; rolconnlimit: number }>(
        'SELECT rolcanlogin, rolsuper, rolconnlimit FROM pg_roles WHERE rolname = $1',
        [name],
      )
    )[0]!;
  const sessionsOf = async (name: string) =>
    (
      await cl.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
        [name],
      )
    )[0]!.n;
  const alive = async (pid: number) =>
    (await cl.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]))[0]!.n === 1;
  const attack = (name: string) => {
    const a = new Attacker({ host: '127.0.0.1', port: cl.port, user: name, password: pw(name), sessions: 6, intervalMs: 10 });
    a.start();
    cleanups.push(() => a.stop());
    return a;
  };
  const hold = (name: string, sql: string) => {
    const h = new LockHolder({ host: '127.0.0.1', port: cl.port, user: name, password: pw(name), sql });
    cleanups.push(() => h.stop());
    return h;
  };
  const cutoff = (args: string[], timeoutMs = 40_000) => runCli(['cutoff', ...args, '--dsn', cl.dsn()], {}, { timeoutMs });

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
  });

  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((f) => f()));
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it("the role's own catalog row, locked in an open transaction by a reconnecting session, does not stall cutoff", async () => {
    await createRole('mallory');
    const a = attack('mallory');
    const h = hold('mallory', `ALTER ROLE mallory PASSWORD 'changed-by-mallory'`);
    await waitFor(async () => h.holds > 0 && a.stats.successes > 0, 15_000, 'the attacker to hold the row lock');
    const started = Date.now();
    const r = await cutoff(['mallory', '--yes', '--json']);
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect(d.exposure).toEqual([]);
    expect((await role('mallory')).rolcanlogin).toBe(false);
    expect(await sessionsOf('mallory')).toBe(0);
    // the holder was found as a blocker of the ALTER, and ended as the target's own backend
    const blockers = (d.contain as Json).blockers as Json[];
    expect(blockers.length).toBeGreaterThan(0);
    expect(blockers.some((b) => b.role === 'mallory' && b.terminated === true && b.relation === 'pg_authid')).toBe(true);
    expect((d.contain as Json).attempts as number).toBeGreaterThan(1);
    // the holder's statement is recorded, its password literal is not
    expect(r.stdout).toContain(`ALTER ROLE mallory PASSWORD '*****'`);
    expect(r.stdout).not.toContain('changed-by-mallory');
    // bounded by the lock timeout and a retry, not by the attacker's patience
    expect(took).toBeLessThan(20_000);
  });

  it('a superuser target holding LOCK TABLE pg_authid IN EXCLUSIVE MODE is contained: NOLOGIN, NOSUPERUSER, no session left', async () => {
    await createRole('su_evil', 'SUPERUSER');
    attack('su_evil');
    const h = hold('su_evil', 'LOCK TABLE pg_authid IN EXCLUSIVE MODE');
    await waitFor(async () => h.holds > 0, 15_000, 'the lock on pg_authid');
    const r = await cutoff(['su_evil', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect(await role('su_evil')).toMatchObject({ rolcanlogin: false, rolsuper: false });
    expect(await sessionsOf('su_evil')).toBe(0);
    const blockers = (d.contain as Json).blockers as Json[];
    expect(blockers.some((b) => b.role === 'su_evil' && b.mode === 'ExclusiveLock' && b.relation === 'pg_authid')).toBe(true);
  });

  it('a superuser target that locks everyone out (ACCESS EXCLUSIVE on pg_authid) after pgrevoke connected is still contained', async () => {
    await createRole('su_lockout', 'SUPERUSER');
    const holder = await cl.connectAs('su_lockout', pw('su_lockout'));
    const holderPid = (await holder.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    const report = path.join(tmp, 'lockout.json');
    // on a terminal, pgrevoke has connected and planned when it asks; the lock comes while it waits
    const t = startOnTerminal(['cutoff', 'su_lockout', '--report', report, '--dsn', cl.dsn()], 40_000);
    await waitFor(async () => t.screen().includes('(y/N)'), 20_000, 'the confirmation');
    // changing its own row first empties every session's cached copy of it, so that even
    // pg_terminate_backend(), which looks the backend's role up, waits on the lock
    await holder.query(`ALTER ROLE su_lockout PASSWORD 'pw-su_lockout'`);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE');
    t.type('y\r');
    const code = await t.exited;
    const d = JSON.parse(readFileSync(report, 'utf8')) as Json;
    expect(code, t.screen()).toBe(0);
    expect(await role('su_lockout')).toMatchObject({ rolcanlogin: false, rolsuper: false });
    expect(await alive(holderPid)).toBe(false);
    expect((d.contain as Json).blockers as Json[]).toContainEqual(
      expect.objectContaining({ pid: holderPid, role: 'su_lockout', mode: 'AccessExclusiveLock', relation: 'pg_authid', terminated: true }),
    );
    expect((d.steps as Step[]).find((s) => s.action === 'snapshot')).toMatchObject({ status: 'skipped' });
    const contain = (d.steps as (Step & { executed: string[] })[]).find((s) => s.action === 'contain')!;
    expect(contain.executed.join('\n')).toContain(`SIGTERM from this host to backend pid(s) ${holderPid}`);
  });

  it('a prepared transaction of the role holding its own row (PREPARE TRANSACTION after a password change) is rolled back so the ALTER can commit', async () => {
    await createRole('px_evil');
    const c = await cl.connectAs('px_evil', pw('px_evil'));
    await c.query('BEGIN');
    await c.query(`ALTER ROLE px_evil PASSWORD 'pw-px_evil'`);
    await c.query(`PREPARE TRANSACTION 'px-evil-hold'`);
    await c.end();
    attack('px_evil');
    const r = await cutoff(['px_evil', '--yes', '--json', '--playbook', 'contain-only']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect((await role('px_evil')).rolcanlogin).toBe(false);
    expect(await cl.sql(`SELECT gid FROM pg_prepared_xacts WHERE gid = 'px-evil-hold'`)).toEqual([]);
    expect((d.contain as Json).blockers as Json[]).toContainEqual(
      expect.objectContaining({ pid: null, gid: 'px-evil-hold', role: 'px_evil', relation: 'pg_authid', terminated: true }),
    );
  });

  it("the same, prepared under a group role the target is a member of (SET ROLE before PREPARE): still the target's, rolled back", async () => {
    await cl.sql('CREATE ROLE px_group NOLOGIN');
    await createRole('px_member', 'IN ROLE px_group');
    const c = await cl.connectAs('px_member', pw('px_member'));
    await c.query('BEGIN');
    await c.query(`ALTER ROLE px_member PASSWORD 'pw-px_member'`);
    await c.query('SET ROLE px_group');
    await c.query(`PREPARE TRANSACTION 'px-group-hold'`);
    await c.end();
    const r = await cutoff(['px_member', '--yes', '--json', '--playbook', 'contain-only', '--settle-timeout', '5']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect((await role('px_member')).rolcanlogin).toBe(false);
    expect(await cl.sql(`SELECT gid FROM pg_prepared_xacts WHERE gid = 'px-group-hold'`)).toEqual([]);
    expect((d.contain as Json).blockers as Json[]).toContainEqual(
      expect.objectContaining({ pid: null, gid: 'px-group-hold', user: 'px_group', relation: 'pg_authid', terminated: true }),
    );
  });

  it("a bystander's lock on the role's row is waited out, named in the report, and never terminated; the target's sessions are ended meanwhile", async () => {
    await createRole('victim');
    await cl.sql(`CREATE ROLE dba_bob SUPERUSER LOGIN PASSWORD 'pw-dba_bob'`);
    const bob = await cl.connectAs('dba_bob', pw('dba_bob'));
    const bobPid = (await bob.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    const a = attack('victim');
    await waitFor(async () => (await sessionsOf('victim')) >= 6, 15_000, 'the attacker sessions');
    await bob.query('BEGIN');
    await bob.query('ALTER ROLE victim CONNECTION LIMIT 5');
    const run = startCli(['cutoff', 'victim', '--yes', '--json', '--dsn', cl.dsn()], {}, { timeoutMs: 40_000 });
    // while bob holds the row, the target's sessions are still being ended
    await waitFor(async () => (await sessionsOf('victim')) === 0 || null, 10_000, "the target's sessions to be ended while blocked");
    const connectsWhileBlocked = a.stats.connects;
    await new Promise((r) => setTimeout(r, 1500));
    await bob.query('COMMIT'); // the ALTER then sees "tuple concurrently updated" and must retry
    const code = await run.exited;
    expect(code, run.stderr()).toBe(0);
    const d = JSON.parse(run.stdout()) as Json;
    expect(await role('victim')).toMatchObject({ rolcanlogin: false, rolconnlimit: 0 });
    expect(await alive(bobPid)).toBe(true);
    expect(await sessionsOf('victim')).toBe(0);
    const blockers = (d.contain as Json).blockers as Json[];
    expect(blockers).toContainEqual(
      expect.objectContaining({
        pid: bobPid,
        user: 'dba_bob',
        role: null,
        terminated: false,
        relation: 'pg_authid',
        mode: 'RowExclusiveLock',
      }),
    );
    // each retry while bob held the row ended the attacker's reconnected sessions again
    expect(a.stats.connects - connectsWhileBlocked).toBeGreaterThanOrEqual(6);
    expect((d.terminated as Json[]).length).toBeGreaterThanOrEqual(12);
    const warnings = (d.warnings as string[]).join('\n');
    expect(warnings).toMatch(new RegExp(`${bobPid}.*dba_bob`));
  });

  it('SIGINT while the ALTER is blocked by a bystander: exits within 2 s, report written, says nothing was committed, exit 3', async () => {
    await createRole('sig_victim');
    await cl.sql(`CREATE ROLE dba_carol SUPERUSER LOGIN PASSWORD 'pw-dba_carol'`);
    const carol = await cl.connectAs('dba_carol', pw('dba_carol'));
    attack('sig_victim');
    await carol.query('BEGIN');
    await carol.query('LOCK TABLE pg_authid IN EXCLUSIVE MODE');
    cleanups.push(() => carol.query('ROLLBACK'));
    const report = path.join(tmp, 'sig-report.json');
    const run = startCli(
      ['cutoff', 'sig_victim', '--yes', '--json', '--settle-timeout', '60', '--report', report, '--dsn', cl.dsn()],
      {},
      {
        timeoutMs: 40_000,
      },
    );
    await waitFor(async () => (await lockWaiters(cl, '%NOLOGIN%')) > 0, 15_000, 'the ALTER to wait on the lock');
    await new Promise((r) => setTimeout(r, 500));
    const sentAt = Date.now();
    run.signal('SIGINT');
    const code = await run.exited;
    expect(Date.now() - sentAt).toBeLessThan(2000);
    expect(code, run.stderr()).toBe(3);
    const d = JSON.parse(run.stdout()) as Json;
    expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual(d);
    expect(d).toMatchObject({ interrupted: true, exitCode: 3, committedAt: null });
    const contain = (d.steps as Step[]).find((s) => s.action === 'contain')!;
    expect(contain.status).toBe('failed');
    expect(contain.detail).toMatch(/interrupted/);
    expect((d.exposure as string[]).join('\n')).toMatch(/NOLOGIN was not committed/);
    expect((await role('sig_victim')).rolcanlogin).toBe(true);
    // the server is not left running pgrevoke's statement
    expect(
      (
        await cl.sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%NOLOGIN%' AND pid <> pg_backend_pid()`,
        )
      )[0]!.n,
    ).toBe(0);
  });

  it('SIGINT while offboarding waits on a lock in another database cancels that statement too: exit 3 within 2 s', async () => {
    await createRole('off_mal');
    await cl.sql('CREATE DATABASE off_app');
    await cl.sql('GRANT CREATE ON DATABASE off_app TO off_mal');
    const m = await cl.connectAs('off_mal', pw('off_mal'), 'off_app');
    await m.query('CREATE SCHEMA off_s; CREATE TABLE off_s.off_t (x int)');
    await m.end();
    // a bystander reads the role's table in a long transaction: REASSIGN OWNED must wait for it
    const reader = await cl.connectAs('postgres', cl.password, 'off_app');
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM off_s.off_t');
    cleanups.push(() => reader.query('ROLLBACK'));
    const run = startCli(
      ['cutoff', 'off_mal', '--yes', '--json', '--playbook', 'offboarding', '--reassign-to', 'postgres', '--dsn', cl.dsn()],
      {},
      { timeoutMs: 40_000 },
    );
    await waitFor(async () => (await lockWaiters(cl, 'REASSIGN OWNED%')) > 0, 20_000, 'REASSIGN OWNED to wait on the lock');
    const sentAt = Date.now();
    run.signal('SIGINT');
    expect(await run.exited, run.stderr()).toBe(3);
    expect(Date.now() - sentAt).toBeLessThan(2000);
    const d = JSON.parse(run.stdout()) as Json;
    expect((d.steps as Step[]).find((s) => s.action === 'reassign_owned')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/interrupted/),
    });
    expect((d.exposure as string[]).join('\n')).toMatch(/interrupted .*during reassign_owned/);
    expect(
      (
        await cl.sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'REASSIGN OWNED%' AND state = 'active'`,
        )
      )[0]!.n,
    ).toBe(0);
  });

  it('an interrupt sends the server a cancel request for the running statement: it ends at once, with 57014', async () => {
    const c = await cl.connectAs('postgres', cl.password);
    const interrupt = new Interrupt();
    const exec = new PgExecutor(resolveConnParams({ dsn: cl.dsn() }, {}), c, interrupt);
    const step: PlanStep = { index: 0, action: 'contain', node: 'test', database: null, role: null, sql: [], reason: '', skip: null };
    const running = exec.run(step, `SELECT pg_sleep(30) /* cancel-probe */`);
    const settled = running.then(
      () => null,
      (err: { code?: string }) => err,
    );
    await waitFor(
      async () =>
        (
          await cl.sql<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%cancel-probe%' AND pid <> pg_backend_pid()`,
          )
        )[0]!.n,
      10_000,
      'the statement to run',
    );
    const sentAt = Date.now();
    interrupt.trigger();
    expect(await settled).toMatchObject({ code: '57014' });
    expect(Date.now() - sentAt).toBeLessThan(2000);
    // the session survives the cancel and can still be used (for the report's last reads)
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('SIGINT during settle: the open suspects and the interruption are listed under exposure', async () => {
    await createRole('parked');
    // parked first: the attacker's own logins pass through the hidden window too
    const { client, pid } = await parkLogin(cl, 'parked', pw('parked'));
    attack('parked');
    cleanups.push(() => client.end().catch(() => undefined));
    cleanups.push(() => cl.sql('SELECT pg_terminate_backend($1)', [pid]));
    const run = startCli(
      ['cutoff', 'parked', '--yes', '--json', '--hidden-grace', '600000', '--settle-timeout', '120', '--dsn', cl.dsn()],
      {},
      {
        timeoutMs: 40_000,
      },
    );
    await waitFor(async () => (await role('parked')).rolcanlogin === false, 15_000, 'NOLOGIN to commit');
    await new Promise((r) => setTimeout(r, 300));
    run.signal('SIGINT');
    expect(await run.exited, run.stderr()).toBe(3);
    const d = JSON.parse(run.stdout()) as Json;
    const open = ((d.settle as Json).suspects as Json[]).filter((s) => s.resolution === 'open');
    expect(open.map((s) => s.pid)).toContain(pid);
    const exposure = (d.exposure as string[]).join('\n');
    expect(exposure).toMatch(new RegExp(`hidden backend ${pid}`));
    expect(exposure).toMatch(/interrupted/);
  });
});
