// cutoff against staged compromises on real servers, run as a user would: the CLI as a subprocess,
// its stdout JSON and exit code asserted, and the server checked afterwards.
import { readFileSync, statSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenBackendsSql } from '../../src/checks/hidden-backends.js';
import { apply } from '../../src/playbook/apply.js';
import { DryRunExecutor, PgExecutor } from '../../src/playbook/executor.js';
import { loadPlaybook } from '../../src/playbook/load.js';
import { buildPlan } from '../../src/playbook/plan.js';
import { collectPlanState } from '../../src/playbook/collect.js';
import { resolveConnParams } from '../../src/pg/conninfo.js';
import { ident } from '../../src/pg/quote.js';
import { runCli, runOnTerminal, startCli, jsonDoc } from '../helpers/cli.js';
import { MAJORS, parkLogin, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const HBA =
  ['local all all trust', 'host all postgres 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n';
const HOSTILE = `Robert'); DROP TABLE accounts;--`;
const QUOTED = 'a"b';
const UNICODE = 'ÜNI 𝔐';

interface Json {
  [k: string]: unknown;
}
type Step = {
  action: string;
  status: string;
  detail: string | null;
  sql: string[];
  executed: string[];
  database: string | null;
  role: string | null;
};

const steps = (d: Json) => d.steps as Step[];
const step = (d: Json, action: string) => steps(d).find((s) => s.action === action)!;

describe.each(MAJORS)('cutoff on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-cutoff-test-'));
  const pending: pg.Client[] = [];

  const cutoff = (args: string[], env: NodeJS.ProcessEnv = {}, dsn = cl.dsn()) =>
    runCli(['cutoff', ...args, '--dsn', dsn], env, { timeoutMs: 90_000 });
  const createRole = (name: string, extra = '') => cl.sql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD 'pw-${name.length}' ${extra}`);
  const as = (name: string, db = 'postgres') => cl.connectAs(name, `pw-${name.length}`, db);
  const pidOf = async (c: pg.Client) => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
  const alive = async (pid: number) =>
    (await cl.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]))[0]!.n === 1;
  const canLogin = async (name: string) =>
    (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [name]))[0]?.l;
  const sessionsOf = async (name: string) =>
    (
      await cl.sql<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = (SELECT oid FROM pg_roles WHERE rolname = $1)',
        [name],
      )
    )[0]!.n;
  const hidden = async () => (await cl.sql<{ pid: number }>(hiddenBackendsSql(major))).map((r) => r.pid);
  /** Parks a login of `user` in the post-authentication window (parkLogin); returns its pid. */
  const park = async (user: string, password: string) => {
    const { client, pid } = await parkLogin(cl, user, password);
    pending.push(client);
    return pid;
  };
  /** Ends parked backends and waits until they are gone, so the next test starts with none. */
  const unpark = async (...pids: number[]) => {
    await cl.sql(`SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, [pids]);
    await waitFor(async () => !(await Promise.all(pids.map(alive))).some(Boolean), 10_000, `backends ${pids} to exit`);
  };
  const lockWaiters = async () =>
    (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`))[0]!.n;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await cl.sql('INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 50) g');
    await cl.sql('CREATE TABLE loot (v text)');
    await cl.sql('GRANT ALL ON accounts, loot TO PUBLIC');
    await createRole('alice');
  });

  afterAll(async () => {
    for (const c of pending) void c.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('the simple-query facts the round trip stands on: one result per statement, and COMMIT commits what precedes it at once', async () => {
    await createRole('rt_probe');
    const c = await cl.connectAs('postgres', cl.password);
    const other = await cl.connectAs('postgres', cl.password);
    const running = c.query(`ALTER ROLE rt_probe NOLOGIN; COMMIT; SELECT pg_sleep(0.8), 1 AS a; SELECT 2 AS b`) as unknown as Promise<
      pg.QueryResult[]
    >;
    await new Promise((r) => setTimeout(r, 300));
    // while the statement after the COMMIT is still running, another session already sees NOLOGIN
    expect(await other.query(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'rt_probe'`).then((x) => x.rows)).toEqual([
      { rolcanlogin: false },
    ]);
    const results = await running;
    expect(Array.isArray(results)).toBe(true);
    expect(results.map((x) => x.command)).toEqual(['ALTER', 'COMMIT', 'SELECT', 'SELECT']);
    expect(results[3]!.rows).toEqual([{ b: 2 }]);
    // an error after the COMMIT leaves it committed; an error before it leaves nothing
    await cl.sql('ALTER ROLE rt_probe LOGIN');
    await expect(c.query(`ALTER ROLE rt_probe NOLOGIN; COMMIT; SELECT 1/0`)).rejects.toThrow(/division by zero/);
    expect(await canLogin('rt_probe')).toBe(false);
    await cl.sql('ALTER ROLE rt_probe LOGIN');
    await expect(c.query(`ALTER ROLE rt_probe NOLOGIN; SELECT 1/0; COMMIT`)).rejects.toThrow(/division by zero/);
    expect(await canLogin('rt_probe')).toBe(true);
  });

  it('(c) rolls back a prepared transaction, releases the locks it and a session held, writes report, markdown and audit (0600)', async () => {
    await createRole('px_owner');
    const s1 = await as('px_owner');
    const s1pid = await pidOf(s1);
    await s1.query('BEGIN');
    await s1.query('SELECT * FROM accounts WHERE id = 1 FOR UPDATE');
    const s2 = await as('px_owner');
    const s2pid = await pidOf(s2);
    await s2.query('BEGIN');
    await s2.query('UPDATE accounts SET balance = balance + 1 WHERE id = 2');
    await s2.query(`PREPARE TRANSACTION 'px-1'`);
    const a1 = await as('alice');
    const a2 = await as('alice');
    const a1pid = await pidOf(a1);
    const a2pid = await pidOf(a2);
    const blocked1 = a1.query('UPDATE accounts SET balance = 0 WHERE id = 1');
    const blocked2 = a2.query('UPDATE accounts SET balance = 0 WHERE id = 2');
    await waitFor(async () => (await lockWaiters()) >= 2, 10_000, 'two blocked bystanders');

    const report = path.join(tmp, 'c-report.json');
    const md = path.join(tmp, 'c-ticket.md');
    const audit = path.join(tmp, 'c-audit.log');
    const r = await cutoff([
      'px_owner',
      '--yes',
      '--json',
      '--report',
      report,
      '--markdown',
      md,
      '--audit-log',
      audit,
      '--reason',
      'ticket SEC-1',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect(Object.keys(d)).toEqual(
      expect.arrayContaining([
        'schemaVersion',
        'roles',
        'playbook',
        'dryRun',
        'operator',
        'startedAt',
        'finishedAt',
        'steps',
        'snapshot',
        'terminated',
        'verification',
        'exitCode',
      ]),
    );
    expect(d).toMatchObject({
      schemaVersion: 1,
      dryRun: false,
      exitCode: 0,
      playbook: { name: 'compromised-credential', reason: 'compromise' },
    });
    expect(d.operator).toMatchObject({ user: 'postgres', osUser: expect.any(String), host: os.hostname() });
    expect(steps(d).map((s) => [s.action, s.status])).toEqual([
      ['snapshot', 'done'],
      ['contain', 'done'],
      ['settle', 'done'],
      ['hba_reject', 'done'],
      ['rollback_prepared', 'done'],
      ['check_locks', 'done'],
      ['disable_subscriptions', 'skipped'],
      ['verify', 'done'],
    ]);
    for (const s of steps(d).filter((x) => x.status === 'done'))
      expect(s).toMatchObject({ startedAt: expect.any(String), durationMs: expect.any(Number) });
    const snap = d.snapshot as Json;
    expect((snap.preparedTransactions as Json[]).map((p) => p.gid)).toEqual(['px-1']);
    expect((snap.blocking as Json[]).map((b) => b.blockedPid).sort()).toEqual([a1pid, a2pid].sort());
    expect((snap.sessions as Json[]).map((x) => x.pid).sort()).toEqual([s1pid, s2pid].sort());
    const term = d.terminated as Json[];
    expect(term.map((t) => t.pid).sort()).toEqual([s1pid, s2pid].sort());
    expect(term.find((t) => t.pid === s1pid)).toMatchObject({
      user: 'px_owner',
      database: 'postgres',
      client: '127.0.0.1',
      query: 'SELECT * FROM accounts WHERE id = 1 FOR UPDATE',
      hidden: false,
    });
    expect(step(d, 'rollback_prepared')).toMatchObject({ database: 'postgres', role: 'px_owner', executed: [`ROLLBACK PREPARED 'px-1'`] });
    const locks = d.locks as Json;
    expect(locks.remaining).toEqual([]);
    expect((locks.released as Json[]).map((x) => x.pid).sort()).toEqual([a1pid, a2pid].sort());
    expect(d.verification).toEqual([expect.objectContaining({ role: 'px_owner', verdict: 'contained' })]);
    // the bystanders' UPDATEs complete: the row locks are gone
    await expect(Promise.all([blocked1, blocked2])).resolves.toHaveLength(2);
    expect(await cl.sql(`SELECT gid FROM pg_prepared_xacts`)).toEqual([]);
    expect(await alive(s1pid)).toBe(false);
    expect(await canLogin('px_owner')).toBe(false);

    // report file = stdout; files 0600; markdown ticket; one audit line per action
    expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual(d);
    for (const f of [report, md, audit]) expect(statSync(f).mode & 0o777).toBe(0o600);
    const ticket = readFileSync(md, 'utf8');
    expect(ticket).toContain('# pgrevoke cutoff: `px_owner`');
    expect(ticket).toContain('ticket SEC-1');
    expect(ticket).toContain(String(s1pid));
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Json);
    expect(lines.map((l) => l.action)).toEqual([
      'snapshot',
      'contain',
      'settle',
      'hba_reject',
      'rollback_prepared',
      'check_locks',
      'disable_subscriptions',
      'verify',
    ]);
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(['action', 'detail', 'node', 'note', 'operator', 'reason', 'result', 'target', 'time']);
      expect(l).toMatchObject({
        target: 'px_owner',
        reason: 'compromise',
        node: `127.0.0.1:${cl.port}`,
        note: 'ticket SEC-1',
        operator: { dbUser: 'postgres' },
      });
    }
    expect(lines.find((l) => l.action === 'rollback_prepared')!.result).toBe('done');
    const everything = r.stdout + r.stderr + readFileSync(report, 'utf8') + ticket + readFileSync(audit, 'utf8');
    expect(everything).not.toContain(cl.password);
    expect(everything).not.toContain('pw-8');
  });

  it('(d) ends only the target: "UPPER" and a role that is a member of nothing keep their sessions; --rotate-password never shows', async () => {
    await createRole('upper');
    await createRole('UPPER');
    await createRole('loner');
    const t1 = await as('upper');
    const t2 = await as('upper');
    const targetPids = [await pidOf(t1), await pidOf(t2)];
    const b1 = await as('UPPER');
    const b2 = await as('loner');
    const bystanders = [await pidOf(b1), await pidOf(b2)];
    const pwBefore = (await cl.sql<{ p: string }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'upper'`))[0]!.p;

    const r = await cutoff(['upper', '--yes', '--json', '--rotate-password']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect((d.terminated as Json[]).map((t) => t.pid).sort()).toEqual(targetPids.sort());
    for (const pid of bystanders) expect(await alive(pid)).toBe(true);
    expect((await b1.query('SELECT current_user AS u')).rows[0].u).toBe('UPPER');
    expect((await b2.query('SELECT current_user AS u')).rows[0].u).toBe('loner');
    expect(await canLogin('UPPER')).toBe(true);
    expect(await cl.sql(`SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = 'upper'`)).toEqual([
      { rolcanlogin: false, rolconnlimit: 0 },
    ]);
    await expect(t1.query('SELECT 1')).rejects.toThrow();

    const pwAfter = (await cl.sql<{ p: string }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'upper'`))[0]!.p;
    expect(pwAfter).not.toBe(pwBefore);
    expect(pwAfter).toMatch(/^SCRAM-SHA-256\$4096:/);
    const contain = step(d, 'contain');
    expect(contain.executed[0]).toContain(`ALTER ROLE "upper" PASSWORD '*****'`);
    expect(r.stdout + r.stderr).not.toContain(pwAfter.split('$')[2]!.split(':')[0]!); // not even the verifier
    expect(r.stdout).not.toMatch(/PASSWORD 'SCRAM/);
  });

  it('(e) cuts off hostile and unicode names together, one ALTER each in the same round trip; nothing else changes', async () => {
    const names = [HOSTILE, QUOTED, UNICODE];
    const pids: number[] = [];
    for (const n of names) {
      await createRole(n);
      pids.push(await pidOf(await as(n)));
    }
    const rolesBefore = await cl.sql<{ rolname: string; rolcanlogin: boolean }>(
      `SELECT rolname, rolcanlogin FROM pg_roles ORDER BY rolname`,
    );
    const r = await cutoff([...names, '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect((d.roles as Json[]).map((x) => x.name)).toEqual(names);
    const rt = step(d, 'contain').executed;
    expect(rt).toHaveLength(1);
    expect(rt[0]).toContain(
      `ALTER ROLE "Robert'); DROP TABLE accounts;--" NOLOGIN CONNECTION LIMIT 0;\nALTER ROLE "a""b" NOLOGIN CONNECTION LIMIT 0;\nALTER ROLE "ÜNI 𝔐" NOLOGIN CONNECTION LIMIT 0;\nCOMMIT;`,
    );
    expect((d.terminated as Json[]).map((t) => t.pid).sort()).toEqual([...pids].sort());
    expect((d.verification as Json[]).map((v) => v.verdict)).toEqual(['contained', 'contained', 'contained']);
    for (const pid of pids) expect(await alive(pid)).toBe(false);
    const rolesAfter = await cl.sql<{ rolname: string; rolcanlogin: boolean }>(
      `SELECT rolname, rolcanlogin FROM pg_roles ORDER BY rolname`,
    );
    expect(rolesAfter).toEqual(rolesBefore.map((x) => (names.includes(x.rolname) ? { ...x, rolcanlogin: false } : x)));
    expect(await cl.sql(`SELECT count(*)::int AS n FROM accounts`)).toEqual([{ n: 50 }]);
    // the HBA lines for those names parse, and name them exactly
    expect(await cl.sql(`SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL`)).toEqual([]);
    const rejects = await cl.sql<{ user_name: string[] }>(`SELECT user_name FROM pg_hba_file_rules WHERE auth_method = 'reject'`);
    for (const n of names) expect(rejects.filter((x) => x.user_name.length === 1 && x.user_name[0] === n)).toHaveLength(2);
  });

  it('(f) --dry-run reads the real state, prints the SQL and changes nothing; its statements are the ones apply runs', async () => {
    await createRole('dry_target');
    const s = await as('dry_target');
    const spid = await pidOf(s);
    const p = await as('dry_target');
    await p.query('BEGIN');
    await p.query('UPDATE accounts SET balance = 7 WHERE id = 5');
    await p.query(`PREPARE TRANSACTION 'dry-1'`);
    const hbaBefore = readFileSync(cl.hbaFile);
    const loadTime = async () => {
      const c = await cl.connectAs('postgres', cl.password);
      const t = (await c.query<{ t: string }>('SELECT pg_conf_load_time()::text AS t')).rows[0]!.t;
      await c.end();
      return t;
    };
    const loadedBefore = await loadTime();

    const text = await cutoff(['dry_target', '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('DRY RUN');
    expect(text.stdout).toContain('ALTER ROLE "dry_target" NOLOGIN CONNECTION LIMIT 0;');
    expect(text.stdout).toContain("ROLLBACK PREPARED 'dry-1';");
    expect(text.stdout).toContain('pg_terminate_backend(a.pid)');
    const j = await cutoff(['dry_target', '--dry-run', '--json']);
    expect(j.code, j.stderr).toBe(0);
    const d = jsonDoc<Json>(j);
    expect(d.dryRun).toBe(true);
    expect(d.terminated).toEqual([]);
    expect(steps(d).map((x) => x.status)).toEqual(['done', 'planned', 'planned', 'planned', 'planned', 'planned', 'skipped', 'planned']);
    expect(((d.snapshot as Json).sessions as Json[]).map((x) => x.pid)).toContain(spid); // it read the real state

    expect(await canLogin('dry_target')).toBe(true);
    expect(await alive(spid)).toBe(true);
    expect((await s.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    expect(readFileSync(cl.hbaFile).equals(hbaBefore)).toBe(true);
    expect(await loadTime()).toBe(loadedBefore);
    expect(await cl.sql(`SELECT gid FROM pg_prepared_xacts WHERE gid = 'dry-1'`)).toEqual([{ gid: 'dry-1' }]);
    await cl.sql(`ROLLBACK PREPARED 'dry-1'`);

    // the same plan, applied: statement for statement what the dry run showed (a role without sessions: no loop extras)
    await createRole('quiet');
    const q = await as('quiet');
    await q.query('BEGIN');
    await q.query('UPDATE accounts SET balance = 8 WHERE id = 6');
    await q.query(`PREPARE TRANSACTION 'quiet-1'`);
    await q.end();
    await waitFor(async () => (await sessionsOf('quiet')) === 0, 5000, 'quiet to disconnect');
    const dry = jsonDoc<Json>(await cutoff(['quiet', '--dry-run', '--json']));
    const real = await cutoff(['quiet', '--yes', '--json']);
    expect(real.code, real.stderr).toBe(0);
    const done = jsonDoc<Json>(real);
    const shape = (x: Json) => steps(x).map((st) => ({ action: st.action, database: st.database, executed: st.executed }));
    expect(shape(done)).toEqual(shape(dry));
    expect(steps(dry).map((st) => st.executed)).toEqual(
      steps(dry).map((st) => (st.status === 'skipped' ? [] : st.action === 'verify' || st.action === 'snapshot' ? [] : st.sql)),
    );
    expect(step(done, 'rollback_prepared').executed).toEqual([`ROLLBACK PREPARED 'quiet-1'`]);
  });

  it('(f) library: the dry-run executor records exactly the statements the real executor runs', async () => {
    await createRole('quiet_lib');
    const c = await as('quiet_lib');
    await c.query('BEGIN');
    await c.query('UPDATE accounts SET balance = 9 WHERE id = 9');
    await c.query(`PREPARE TRANSACTION 'lib-1'`);
    await c.end();
    await waitFor(async () => (await sessionsOf('quiet_lib')) === 0, 5000, 'quiet_lib to disconnect');
    const params = resolveConnParams({ dsn: cl.dsn() }, {});
    const client = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'postgres', password: cl.password, database: 'postgres' });
    await client.connect();
    try {
      const playbook = await loadPlaybook();
      const input = { roles: ['quiet_lib'] };
      const run = async (exec: DryRunExecutor | PgExecutor) => {
        const { state, operator } = await collectPlanState(params, client, input);
        const plan = buildPlan(playbook, state, operator, params, input);
        const report = await apply({
          plan,
          state,
          exec,
          reader: client,
          params,
          operator: { user: 'postgres', osUser: 'test', host: 'test', superuser: true },
        });
        return { report, log: exec.log.map((l) => ({ action: l.action, database: l.database, sql: l.sql })) };
      };
      const dry = await run(new DryRunExecutor());
      expect(await canLogin('quiet_lib')).toBe(true);
      const exec = new PgExecutor(params, client);
      const real = await run(exec);
      await exec.close();
      expect(real.report.exitCode).toBe(0);
      expect(real.log).toEqual(dry.log);
      expect(real.log.map((l) => l.action)).toEqual([
        'contain',
        'settle',
        'hba_reject',
        'hba_reject',
        'hba_reject',
        'hba_reject',
        'rollback_prepared',
        'check_locks',
        'check_locks',
      ]);
      expect(await canLogin('quiet_lib')).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('(g) without a terminal and without --yes or --dry-run: exit 2 and nothing changes', async () => {
    await createRole('nontty');
    const s = await as('nontty');
    const spid = await pidOf(s);
    const hbaBefore = readFileSync(cl.hbaFile);
    const r = await cutoff(['nontty']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--yes/);
    expect(r.stderr).toMatch(/--dry-run/);
    expect(await canLogin('nontty')).toBe(true);
    expect(await alive(spid)).toBe(true);
    expect(readFileSync(cl.hbaFile).equals(hbaBefore)).toBe(true);
  });

  it('unknown roles are exit 2 before anything changes, even next to a real one', async () => {
    await createRole('real_one');
    const r = await cutoff(['real_one', 'Real_One_typo', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('role "Real_One_typo" does not exist');
    expect(await canLogin('real_one')).toBe(true);
    const bad = await cutoff(['real_one', '--yes', '--settle-timeout', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid --settle-timeout');
  });

  it('(h) operators without the privileges are refused before any change, with a report', async () => {
    await cl.sql(`CREATE ROLE weak LOGIN PASSWORD 'weak-pw' CREATEROLE`);
    await cl.sql(`CREATE ROLE oncall LOGIN PASSWORD 'oncall-pw' CREATEROLE IN ROLE pg_signal_backend`);
    await createRole('h_plain');
    await createRole('h_super', 'SUPERUSER');
    const plain = await as('h_plain');
    const sup = await as('h_super');
    const plainPid = await pidOf(plain);
    const supPid = await pidOf(sup);

    // no superuser, no pg_signal_backend
    const weak = await cutoff(['h_plain', '--yes', '--json'], {}, cl.url('weak', 'weak-pw'));
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/weak cannot terminate the role's sessions/);
    expect(weak.stderr).toContain('42501');
    expect(jsonDoc<Json>(weak)).toMatchObject({ exitCode: 2 });
    expect(steps(jsonDoc<Json>(weak)).every((s) => s.status === 'skipped' && /refused before any change/.test(s.detail ?? ''))).toBe(true);
    expect(await canLogin('h_plain')).toBe(true);
    expect(await alive(plainPid)).toBe(true);

    // pg_signal_backend but not superuser, against a superuser
    const report = path.join(tmp, 'h-report.json');
    const oc = await cutoff(['h_super', '--yes', '--json', '--report', report], {}, cl.url('oncall', 'oncall-pw'));
    expect(oc.code).not.toBe(0);
    expect(oc.code).toBe(2);
    expect(oc.stderr).toMatch(/needs superuser/);
    const saved = JSON.parse(readFileSync(report, 'utf8')) as Json;
    expect(saved).toMatchObject({ exitCode: 2, terminated: [] });
    expect(steps(saved).every((s) => s.status === 'skipped')).toBe(true);
    expect(await cl.sql(`SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'h_super'`)).toEqual([
      { rolcanlogin: true, rolsuper: true },
    ]);
    expect(await alive(supPid)).toBe(true);

    if (major >= 16) {
      // PG16+: CREATEROLE alone may not alter a role it has no ADMIN OPTION on
      const noAdmin = await cutoff(['h_plain', '--yes', '--json'], {}, cl.url('oncall', 'oncall-pw'));
      expect(noAdmin.code).toBe(2);
      expect(noAdmin.stderr).toContain('ADMIN OPTION');
      expect(await canLogin('h_plain')).toBe(true);
      await cl.sql(`GRANT h_plain TO oncall WITH ADMIN OPTION`);
    }
    // CREATEROLE + pg_signal_backend is enough for a plain role; the HBA step needs privileges it lacks and names them
    const ok = await cutoff(['h_plain', '--yes', '--json'], {}, cl.url('oncall', 'oncall-pw'));
    expect(ok.code, ok.stderr).toBe(0);
    const d = jsonDoc<Json>(ok);
    expect((d.terminated as Json[]).map((t) => t.pid)).toEqual([plainPid]);
    expect(step(d, 'hba_reject')).toMatchObject({ status: 'skipped', detail: expect.stringContaining('oncall may not see hba_file') });
    expect(await canLogin('h_plain')).toBe(false);
    expect(await alive(plainPid)).toBe(false);
  });

  it('(i) SIGINT during the settle loop: the statement finishes, the report is written with the rest skipped, exit 3', async () => {
    await createRole('sig_target');
    const before = [await park('sig_target', 'pw-10')];

    const report = path.join(tmp, 'i-report.json');
    const child = startCli(
      [
        'cutoff',
        'sig_target',
        '--yes',
        '--json',
        '--hidden-grace',
        '600000',
        '--settle-timeout',
        '120',
        '--report',
        report,
        '--dsn',
        cl.dsn(),
      ],
      {},
      { timeoutMs: 90_000 },
    );
    await waitFor(async () => (await canLogin('sig_target')) === false, 20_000, 'NOLOGIN to commit');
    await new Promise((r) => setTimeout(r, 400)); // well inside the settle loop (grace 600 s)
    child.signal('SIGINT');
    const code = await child.exited;
    expect(code, child.stderr()).toBe(3);
    const d = JSON.parse(child.stdout()) as Json;
    const saved = JSON.parse(readFileSync(report, 'utf8')) as Json;
    expect(saved).toEqual(d);
    expect(d).toMatchObject({ interrupted: true, exitCode: 3 });
    expect(steps(d).map((s) => [s.action, s.status])).toEqual([
      ['snapshot', 'done'],
      ['contain', 'done'],
      ['settle', 'failed'],
      ['hba_reject', 'skipped'],
      ['rollback_prepared', 'skipped'],
      ['check_locks', 'skipped'],
      ['disable_subscriptions', 'skipped'],
      ['verify', 'skipped'],
    ]);
    expect(step(d, 'settle').detail).toMatch(/interrupted/);
    expect(step(d, 'verify').detail).toBe('interrupted');
    expect(((d.settle as Json).suspects as Json[]).map((x) => x.pid)).toEqual(expect.arrayContaining(before));
    await unpark(...before);
  });

  it('LOGIN switched back on from elsewhere during the cutoff is switched off again and reported', async () => {
    await createRole('flip_target');
    await createRole('flip_bystander');
    await cl.sql(`CREATE ROLE accomplice SUPERUSER LOGIN PASSWORD 'acc-pw'`);
    // a bystander parked in the post-authentication window keeps the settle loop busy for the grace period
    const parked = await park('flip_bystander', 'pw-14');
    const acc = await cl.connectAs('accomplice', 'acc-pw');
    let flips = 0;
    let stopAt = 0;
    let stop = false;
    const flipper = (async () => {
      // as soon as NOLOGIN is seen, switch LOGIN back on, again and again for 300 ms
      while (!stop && (stopAt === 0 || Date.now() < stopAt)) {
        const { rows } = await acc.query<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'flip_target'`);
        if (rows[0]?.l === false) {
          await acc.query(`ALTER ROLE flip_target LOGIN`);
          flips++;
          if (stopAt === 0) stopAt = Date.now() + 300;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const r = await cutoff(['flip_target', '--yes', '--json', '--hidden-grace', '1500']);
    stop = true;
    await flipper;
    expect(flips).toBeGreaterThan(0);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    const reapplied = (d.settle as Json).reapplied as Json[];
    expect(reapplied.length).toBeGreaterThan(0);
    expect(reapplied[0]).toMatchObject({ role: 'flip_target', detail: expect.stringContaining('NOLOGIN applied again') });
    expect((d.warnings as string[]).some((w) => w.includes('switched back on'))).toBe(true);
    expect(step(d, 'settle').executed).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SET LOCAL lock_timeout = '250ms';\nALTER ROLE "flip_target" NOLOGIN CONNECTION LIMIT 0;\nCOMMIT;/),
      ]),
    );
    expect(await canLogin('flip_target')).toBe(false);
    expect(d.verification).toEqual([expect.objectContaining({ verdict: 'contained' })]);
    await unpark(parked);
  });

  it('a hidden backend a non-superuser operator cannot terminate leaves exposure: exit 1, listed', async () => {
    await createRole('hide_np');
    if (major >= 16) await cl.sql(`GRANT hide_np TO oncall WITH ADMIN OPTION`);
    const pid = await park('hide_np', 'pw-7');
    const r = await cutoff(['hide_np', '--yes', '--json', '--settle-timeout', '1'], {}, cl.url('oncall', 'oncall-pw'));
    expect(r.code, r.stderr).toBe(1);
    const d = jsonDoc<Json>(r);
    expect(d.exitCode).toBe(1);
    expect((d.settle as Json).timedOut).toBe(true);
    expect((d.settle as Json).suspects).toEqual([
      expect.objectContaining({ pid, resolution: 'unresolved', detail: expect.stringContaining('only a superuser') }),
    ]);
    expect((d.exposure as string[]).some((e) => e.includes(`hidden backend ${pid}`))).toBe(true);
    expect(await hidden()).toContain(pid); // still there, still hidden: that is the exposure
    expect(await canLogin('hide_np')).toBe(false);
    await unpark(pid);
  });

  it('with a hidden suspect still unresolved, the HBA reload is held back (it would wake the suspect)', async () => {
    await createRole('held_back');
    const pid = await park('held_back', 'pw-9');
    const hbaBefore = readFileSync(cl.hbaFile);
    const r = await cutoff(['held_back', '--yes', '--json', '--hidden-grace', '600000', '--settle-timeout', '0.5']);
    expect(r.code, r.stderr).toBe(1);
    const d = jsonDoc<Json>(r);
    expect(step(d, 'hba_reject')).toMatchObject({
      status: 'skipped',
      detail: expect.stringContaining(`hidden backend(s) ${pid} are still unresolved`),
    });
    expect(readFileSync(cl.hbaFile).equals(hbaBefore)).toBe(true);
    expect(await hidden()).toContain(pid); // not woken
    await unpark(pid);
  });

  it('(j) --hba-file: the block goes on top, rejects first, parses; a rerun adds nothing and does not fail; the harness lines still work', async () => {
    await createRole('hba_target');
    const r = await cutoff(['hba_target', '--yes', '--json', '--hba-file', cl.hbaFile]);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(cl.hbaFile, 'utf8');
    expect(text.split('\n').slice(0, 4)).toEqual([
      expect.stringMatching(/^# pgrevoke cutoff BEGIN "hba_target" \d{4}-\d\d-\d\dT/),
      'local all,replication "hba_target" reject',
      'host all,replication "hba_target" all reject',
      '# pgrevoke cutoff END "hba_target"',
    ]);
    const rules = await cl.sql<{ line_number: number; user_name: string[]; auth_method: string; error: string | null }>(
      `SELECT line_number, user_name, auth_method, error FROM pg_hba_file_rules ORDER BY line_number`,
    );
    expect(rules.filter((x) => x.error)).toEqual([]);
    const first = rules.filter((x) => x.user_name.includes('hba_target') || x.user_name.includes('all'));
    expect(first.slice(0, 2).map((x) => [x.line_number, x.auth_method])).toEqual([
      [2, 'reject'],
      [3, 'reject'],
    ]);
    // in force: the server refuses the role at pg_hba.conf, before even looking at NOLOGIN
    const c = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'hba_target', password: 'pw-10', database: 'postgres' });
    await expect(c.connect()).rejects.toThrow(/pg_hba\.conf rejects connection/);

    const again = await cutoff(['hba_target', '--yes', '--json', '--hba-file', cl.hbaFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(step(jsonDoc<Json>(again), 'hba_reject')).toMatchObject({ status: 'skipped', detail: expect.stringContaining('already') });
    expect(step(jsonDoc<Json>(again), 'contain').status).toBe('done');
    expect(readFileSync(cl.hbaFile, 'utf8').match(/BEGIN "hba_target"/g)).toHaveLength(1);

    // harness lines: the superuser over TCP with its password, and anyone over the socket
    const su = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'postgres', password: cl.password, database: 'postgres' });
    await su.connect();
    expect((await su.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await su.end();
    const local = new pg.Client({ host: cl.socketDir, port: cl.port, user: 'alice', database: 'postgres' });
    await local.connect();
    expect((await local.query('SELECT current_user AS u')).rows).toEqual([{ u: 'alice' }]);
    await local.end();
  });

  it('a pg_hba.conf that already has error rows is left alone (a reload would be refused anyway); containment goes on', async () => {
    await createRole('hba_broken');
    const s = await as('hba_broken');
    const spid = await pidOf(s);
    const good = readFileSync(cl.hbaFile, 'utf8');
    await cl.writeDataFile('pg_hba.conf', `${good}hots all all 127.0.0.1/32 trust\n`);
    try {
      const broken = readFileSync(cl.hbaFile);
      const r = await cutoff(['hba_broken', '--yes', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const d = jsonDoc<Json>(r);
      expect(step(d, 'hba_reject')).toMatchObject({
        status: 'skipped',
        detail: expect.stringMatching(/already has error rows \(line \d+: invalid connection type "hots"\)/),
      });
      expect(step(d, 'hba_reject').executed).toEqual([]);
      expect(readFileSync(cl.hbaFile).equals(broken)).toBe(true);
      expect(await alive(spid)).toBe(false);
      expect(await canLogin('hba_broken')).toBe(false);
    } finally {
      await cl.writeDataFile('pg_hba.conf', good);
      await cl.sql('SELECT pg_reload_conf()');
    }
  });

  it('on a terminal it shows the plan and asks; "no" changes nothing, "yes" applies', async () => {
    await createRole('tty_target');
    const s = await as('tty_target');
    const spid = await pidOf(s);
    const onTty = async (answer: string) => {
      const r = await runOnTerminal(['cutoff', 'tty_target', '--show-sql', '--dsn', cl.dsn()], `${answer}\r`);
      return { code: r.code, out: r.screen };
    };
    const no = await onTty('n');
    expect(no.out).toContain('Cutoff plan compromised-credential');
    expect(no.out).toContain('ALTER ROLE "tty_target" NOLOGIN CONNECTION LIMIT 0;');
    expect(no.out).toContain('nothing was changed');
    expect(no.code).toBe(2);
    expect(await canLogin('tty_target')).toBe(true);
    expect(await alive(spid)).toBe(true);
    const yes = await onTty('y');
    expect(yes.code, yes.out).toBe(0);
    expect(yes.out).toContain('CONTAINED');
    expect(await canLogin('tty_target')).toBe(false);
    expect(await alive(spid)).toBe(false);
  });

  it('disables the subscriptions the role owns (their apply worker runs as it)', async () => {
    await createRole('subowner', 'SUPERUSER');
    await cl.sql('CREATE DATABASE subdb');
    await cl.sql('CREATE PUBLICATION pub_all FOR TABLE accounts');
    await cl.sql(`SELECT pg_create_logical_replication_slot('sub_slot', 'pgoutput')`);
    const sub = await cl.connectAs('postgres', cl.password, 'subdb');
    await sub.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await sub.query(
      `CREATE SUBSCRIPTION "Sub One" CONNECTION 'host=127.0.0.1 port=${cl.port} user=postgres password=${cl.password} dbname=postgres' PUBLICATION pub_all WITH (connect = false, slot_name = 'sub_slot')`,
    );
    await sub.query(`ALTER SUBSCRIPTION "Sub One" OWNER TO subowner`);
    await sub.query(`ALTER SUBSCRIPTION "Sub One" ENABLE`);
    await waitFor(async () => (await sessionsOf('subowner')) > 0, 20_000, 'the apply worker to run as subowner');

    const r = await cutoff(['subowner', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect(step(d, 'disable_subscriptions')).toMatchObject({
      status: 'done',
      database: 'subdb',
      role: 'subowner',
      executed: expect.arrayContaining(['ALTER SUBSCRIPTION "Sub One" DISABLE']),
    });
    expect(step(d, 'contain').executed[0]).toContain('NOSUPERUSER NOCREATEROLE');
    expect((d.roles as Json[])[0]).toMatchObject({
      before: { superuser: true, canLogin: true },
      restoreSql: 'ALTER ROLE "subowner" LOGIN CONNECTION LIMIT -1 SUPERUSER',
    });
    expect(await cl.sql(`SELECT subenabled FROM pg_subscription WHERE subname = 'Sub One'`)).toEqual([{ subenabled: false }]);
    expect(await cl.sql(`SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = 'subowner'`)).toEqual([
      { rolsuper: false, rolcanlogin: false },
    ]);
    await new Promise((res) => setTimeout(res, 500));
    expect(await sessionsOf('subowner')).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(cl.password);
  });

  it('offboarding: reassigns and drops what the role owns in every database that holds it, then drops the role', async () => {
    await createRole('leaver');
    await cl.sql('CREATE DATABASE appdb');
    const app = await cl.connectAs('postgres', cl.password, 'appdb');
    await app.query('CREATE TABLE ledger (id int)');
    await app.query('ALTER TABLE ledger OWNER TO leaver');
    await app.query('CREATE TABLE shared (id int)');
    await app.query('GRANT SELECT ON shared TO leaver');
    const s = await as('leaver', 'appdb');
    const spid = await pidOf(s);

    const missing = await cutoff(['leaver', '--playbook', 'offboarding', '--yes']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--reassign-to');
    expect(await canLogin('leaver')).toBe(true);

    const r = await cutoff(['leaver', '--playbook', 'offboarding', '--reassign-to', 'alice', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = jsonDoc<Json>(r);
    expect(d.playbook).toMatchObject({ name: 'offboarding', reason: 'offboarding' });
    expect(
      steps(d)
        .filter((x) => ['reassign_owned', 'drop_owned', 'drop_role'].includes(x.action))
        .map((x) => [x.action, x.database, x.status, x.executed]),
    ).toEqual([
      ['reassign_owned', 'appdb', 'done', ['REASSIGN OWNED BY "leaver" TO "alice"']],
      ['drop_owned', 'appdb', 'done', ['DROP OWNED BY "leaver"']],
      ['drop_role', null, 'done', ['DROP ROLE "leaver"']],
    ]);
    expect((d.terminated as Json[]).map((t) => t.pid)).toEqual([spid]);
    expect(d.verification).toEqual([expect.objectContaining({ role: 'leaver', verdict: 'contained', after: null })]);
    expect(await cl.sql(`SELECT 1 FROM pg_roles WHERE rolname = 'leaver'`)).toEqual([]);
    expect((await app.query(`SELECT tableowner FROM pg_tables WHERE tablename = 'ledger'`)).rows).toEqual([{ tableowner: 'alice' }]);
  });
});
