// pgrevoke kill against real servers, run as a user would: the CLI as a subprocess.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenBackendsSql } from '../../src/checks/hidden-backends.js';
import { freePort } from '../../src/embedded/cluster.js';
import { runCli, runOnTerminal } from '../helpers/cli.js';
import { MAJORS, parkLogin, startCluster, type TestCluster } from '../helpers/cluster.js';

interface Result {
  node: string;
  pid: number;
  found: boolean;
  hidden: boolean;
  action: string;
  ok: boolean;
  user: string | null;
  database: string | null;
  error?: string;
  state?: string | null;
  hadQuery?: boolean | null;
}
interface Doc {
  schemaVersion: number;
  results: Result[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pidOf = async (c: pg.Client): Promise<number> => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;

/** A pid no process has: above the default pid_max of 4194304 yet a valid int4. */
const NO_SUCH_PID = 2_000_000_000;

describe.each(MAJORS)('kill on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';

  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  const bob = async () => {
    const c = await cl.connectAs('bob', 'pw-bob', 'postgres', { application_name: 'bob-app' });
    return { c, pid: await pidOf(c) };
  };
  const kill = (args: string[], dsn = cl.dsn()) => runCli(['kill', '--dsn', dsn, ...args]);
  const node = () => `127.0.0.1:${cl.port}`;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE bob LOGIN PASSWORD 'pw-bob'`);
    await cl.sql(`CREATE ROLE eve LOGIN PASSWORD 'pw-eve'`);
    await cl.sql(`CREATE ROLE oncall LOGIN PASSWORD 'pw-oncall' IN ROLE pg_signal_backend`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-kill-'));
  });

  afterAll(async () => {
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('terminates exactly the named session; its siblings of the same role stay and can query', async () => {
    const [victim, s1, s2] = [await bob(), await bob(), await bob()];
    const r = await kill([String(victim.pid), '--yes', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc).toEqual({
      schemaVersion: 1,
      results: [
        { node: node(), pid: victim.pid, found: true, hidden: false, action: 'terminate', ok: true, user: 'bob', database: 'postgres' },
      ],
    });
    // pg_terminate_backend(pid, 5000) waited for the exit: gone at once
    expect(await alive(victim.pid)).toBe(false);
    await expect(victim.c.query('SELECT 1')).rejects.toThrow();
    for (const s of [s1, s2]) {
      expect(await alive(s.pid)).toBe(true);
      expect((await s.c.query<{ n: number }>('SELECT 41 + 1 AS n')).rows[0]!.n).toBe(42);
    }
  });

  it('text mode says what it did', async () => {
    const s = await bob();
    const r = await kill([String(s.pid), '--yes']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`terminated pid ${s.pid} (bob@postgres)`);
    expect(await alive(s.pid)).toBe(false);
  });

  it('--cancel cancels the running query; the session survives', async () => {
    const s = await bob();
    const running = s.c.query('SELECT pg_sleep(30)').then(
      () => 'finished',
      (e: { code?: string }) => e.code,
    );
    for (let i = 0; i < 200 && !(await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [s.pid])).length; i++)
      await sleep(20);
    const started = Date.now();
    const r = await kill([String(s.pid), '--cancel', '--yes', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Doc).results[0]).toMatchObject({ pid: s.pid, action: 'cancel', ok: true });
    expect(await running).toBe('57014'); // query_canceled
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await alive(s.pid)).toBe(true);
    expect((await s.c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);
  });

  it('--cancel says what was running, read in the statement that cancels: a query, or none (idle; idle in transaction, which stays open)', async () => {
    const state = async (pid: number) =>
      (await cl.sql<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]))[0]?.state;
    const cancelled = async (pid: number) =>
      (JSON.parse((await kill([String(pid), '--cancel', '--yes', '--json'])).stdout) as Doc).results[0];

    // a running query: its state is read before the cancel lands (after it, the session is idle)
    const busy = await bob();
    const running = busy.c.query('SELECT pg_sleep(30)').then(
      () => 'finished',
      (e: { code?: string }) => e.code,
    );
    for (let i = 0; i < 200 && (await state(busy.pid)) !== 'active'; i++) await sleep(20);
    expect(await cancelled(busy.pid)).toMatchObject({ pid: busy.pid, action: 'cancel', ok: true, state: 'active', hadQuery: true });
    expect(await running).toBe('57014');

    const idle = await bob();
    const r = await kill([String(idle.pid), '--cancel', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`nothing to cancel: pid ${idle.pid} (bob@postgres) was idle, no query was running\n`);
    expect(await cancelled(idle.pid)).toMatchObject({ ok: true, state: 'idle', hadQuery: false });
    expect(await alive(idle.pid)).toBe(true);

    // idle in transaction: the server ignores the cancel; the transaction, and what it holds, stays
    const tx = await bob();
    await tx.c.query('BEGIN');
    const xid = (await tx.c.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
    const t = await kill([String(tx.pid), '--cancel', '--yes']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toBe(
      `nothing to cancel: pid ${tx.pid} (bob@postgres) was idle in transaction, no query was running; the transaction stays open (terminate the session to end it)\n`,
    );
    expect(await cancelled(tx.pid)).toMatchObject({ ok: true, state: 'idle in transaction', hadQuery: false });
    expect(await state(tx.pid)).toBe('idle in transaction');
    expect((await tx.c.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x).toBe(xid);
    await tx.c.query('COMMIT');
  });

  it('a pid that does not exist: "session not found", exit 1; the other pids are still processed', async () => {
    const s = await bob();
    const r = await kill([String(NO_SUCH_PID), String(s.pid), '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`session not found: pid ${NO_SUCH_PID}`);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.results).toEqual([
      {
        node: node(),
        pid: NO_SUCH_PID,
        found: false,
        hidden: false,
        action: 'terminate',
        ok: false,
        user: null,
        database: null,
        error: `session not found: pid ${NO_SUCH_PID}`,
      },
      { node: node(), pid: s.pid, found: true, hidden: false, action: 'terminate', ok: true, user: 'bob', database: 'postgres' },
    ]);
    expect(await alive(s.pid)).toBe(false);
  });

  it('refuses a server process (the checkpointer) without --force: exit 2, nothing signalled', async () => {
    const ckpt = (await cl.sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'`))[0]!.pid;
    const s = await bob();
    const r = await kill([String(s.pid), String(ckpt), '--yes']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`pid ${ckpt} (checkpointer): not a client session`);
    expect(r.stderr).toContain('--force');
    expect(await alive(s.pid)).toBe(true);
    expect(await alive(ckpt)).toBe(true);
    // with --force it is attempted; PostgreSQL does not let SQL signal an auxiliary process
    const forced = await kill([String(ckpt), '--yes', '--force', '--json']);
    expect(forced.code).toBe(3);
    expect((JSON.parse(forced.stdout) as Doc).results[0]).toMatchObject({ pid: ckpt, found: true, ok: false });
    expect(await alive(ckpt)).toBe(true);
  });

  it('a non-superuser without pg_signal_backend: exit 2 naming what is needed; the session survives', async () => {
    const s = await bob();
    const r = await kill([String(s.pid), '--yes'], cl.url('eve', 'pw-eve'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`permission denied to terminate pid ${s.pid}`);
    expect(r.stderr).toContain('superuser');
    expect(r.stderr).toContain('pg_signal_backend');
    expect(await alive(s.pid)).toBe(true);
    expect((await s.c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);

    // a superuser's session: only a superuser will do, even with pg_signal_backend
    const superPid = (await cl.sql<{ p: number }>('SELECT pg_backend_pid() AS p'))[0]!.p;
    const su = await kill([String(superPid), '--yes', '--json'], cl.url('oncall', 'pw-oncall'));
    expect(su.code).toBe(2);
    expect((JSON.parse(su.stdout) as Doc).results[0]!.error).toContain("only a superuser may signal a superuser's backend");
    expect(await alive(superPid)).toBe(true);

    // pg_signal_backend is enough for an ordinary role's session
    const ok = await kill([String(s.pid), '--yes'], cl.url('oncall', 'pw-oncall'));
    expect(ok.code).toBe(0);
    expect(await alive(s.pid)).toBe(false);
  });

  it('without a terminal and without --yes: exit 2, nothing killed', async () => {
    const s = await bob();
    const r = await kill([String(s.pid)]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--yes');
    expect(await alive(s.pid)).toBe(true);
    expect((await s.c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);
  });

  it('on a terminal it shows the sessions and asks first: "n" kills nothing (exit 2), "y" kills', async () => {
    const s = await bob();
    const no = await runOnTerminal(['kill', '--dsn', cl.dsn(), String(s.pid)], 'n\r');
    expect(no.screen).toContain('Terminate this session?');
    expect(no.screen).toContain('bob-app');
    expect(no.screen).toContain('nothing was signalled');
    expect(no.code).toBe(2);
    expect(await alive(s.pid)).toBe(true);
    const yes = await runOnTerminal(['kill', '--dsn', cl.dsn(), String(s.pid)], 'y\r');
    expect(yes.code).toBe(0);
    expect(yes.screen).toContain(`terminated pid ${s.pid}`);
    expect(await alive(s.pid)).toBe(false);
  });

  it('NODE:PID naming the one node works; naming another node is exit 2 listing the node', async () => {
    const s = await bob();
    const r = await kill([`primary:${s.pid}`, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`unknown node "primary" in "primary:${s.pid}" (nodes: ${node()})`);
    expect(await alive(s.pid)).toBe(true);
    const ok = await kill([`${node()}:${s.pid}`, '--yes', '--json']);
    expect(ok.code).toBe(0);
    expect((JSON.parse(ok.stdout) as Doc).results[0]).toMatchObject({ node: node(), pid: s.pid, ok: true });
    expect(await alive(s.pid)).toBe(false);
  });

  it('--audit-log: one 0600 JSON line per pid signalled, reason admin_kill plus the free text', async () => {
    const [a, b] = [await bob(), await bob()];
    await a.c.query('SELECT 12345 AS marker');
    const file = path.join(dir, 'audit.jsonl');
    const r = await kill([String(a.pid), String(b.pid), String(NO_SUCH_PID), '--yes', '--audit-log', file, '--reason', 'ticket SEC-42']);
    expect(r.code).toBe(1); // one pid did not exist
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const lines = (await fs.readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(2);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries.map((e) => (e.session as { pid: number }).pid)).toEqual([a.pid, b.pid]);
    for (const e of entries) {
      expect(e).toMatchObject({
        node: `127.0.0.1:${cl.port}`,
        operator: { dbUser: 'postgres', osUser: os.userInfo().username, host: os.hostname() },
        target: 'bob',
        action: 'terminate',
        reason: 'admin_kill',
        note: 'ticket SEC-42',
        result: 'done',
      });
      expect(new Date(e.time as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(e.session).toMatchObject({ user: 'bob', database: 'postgres', application: 'bob-app' });
      expect((e.session as { client: string }).client).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    expect((entries[0]!.session as { query: string }).query).toBe('SELECT 12345 AS marker');
    expect(await alive(a.pid)).toBe(false);
    expect(await alive(b.pid)).toBe(false);
  });

  it('terminates a backend held in the post-authentication window (superuser), shown as role unknown', async () => {
    const { pid } = await parkLogin(cl, 'bob', 'pw-bob', 120);
    expect(pid).toBeGreaterThan(0);
    const r = await kill([String(pid), '--yes', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Doc).results[0]).toEqual({
      node: node(),
      pid,
      found: true,
      hidden: true,
      action: 'terminate',
      ok: true,
      user: null,
      database: null,
    });
    expect((await cl.sql(hiddenBackendsSql(major))).length).toBe(0);
  });
});

describe.each(MAJORS.slice(0, 1))('kill across two nodes (--target) on PostgreSQL %i', (major) => {
  let a: TestCluster;
  let b: TestCluster;
  let dir = '';
  const label = (c: TestCluster) => `127.0.0.1:${c.port}`;
  const alive = async (c: TestCluster, pid: number) => (await c.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  const bob = async (c: TestCluster) => {
    const client = await c.connectAs('bob', 'pw-bob', 'postgres', { application_name: 'bob-app' });
    return { c: client, pid: await pidOf(client) };
  };
  const kill = (args: string[], targets = [a.dsn(), b.dsn()]) => runCli(['kill', ...targets.flatMap((t) => ['--target', t]), ...args]);

  beforeAll(async () => {
    [a, b] = await Promise.all([startCluster(major), startCluster(major)]);
    for (const c of [a, b]) await c.sql(`CREATE ROLE bob LOGIN PASSWORD 'pw-bob'`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-kill2-'));
  });

  afterAll(async () => {
    await Promise.all([a?.destroyAll(), b?.destroyAll()]);
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('B:PID ends exactly that session on B; the sessions on A stay, even one named by the same pid on B', async () => {
    const [a1, a2, b1, b2] = [await bob(a), await bob(a), await bob(b), await bob(b)];
    const file = path.join(dir, 'audit.jsonl');
    const r = await kill(['--yes', '--json', '--audit-log', file, `${label(b)}:${b1.pid}`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      schemaVersion: 1,
      results: [
        { node: label(b), pid: b1.pid, found: true, hidden: false, action: 'terminate', ok: true, user: 'bob', database: 'postgres' },
      ],
    });
    expect(await alive(b, b1.pid)).toBe(false);
    expect(await alive(b, b2.pid)).toBe(true);
    for (const s of [a1, a2]) {
      expect(await alive(a, s.pid)).toBe(true);
      expect((await s.c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);
    }
    const audit = (await fs.readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { node: string; session: { pid: number } });
    expect(audit.map((e) => [e.node, e.session.pid])).toEqual([[label(b), b1.pid]]);

    // A's pid named on B: there is no such backend on B (pids are per server); A's session is untouched
    const wrong = await kill(['--yes', '--json', `${label(b)}:${a1.pid}`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`session not found: pid ${label(b)}:${a1.pid}`);
    expect(await alive(a, a1.pid)).toBe(true);

    // one pid on each node, in one run; text output names NODE:PID
    const both = await kill(['--yes', `${label(a)}:${a2.pid}`, `${label(b)}:${b2.pid}`]);
    expect(both.code).toBe(0);
    expect(both.stdout).toContain(`terminated pid ${label(a)}:${a2.pid} (bob@postgres)`);
    expect(both.stdout).toContain(`terminated pid ${label(b)}:${b2.pid} (bob@postgres)`);
    expect(await alive(a, a2.pid)).toBe(false);
    expect(await alive(b, b2.pid)).toBe(false);
    expect(await alive(a, a1.pid)).toBe(true);
  });

  it('on a terminal the confirmation lists NODE:PID; "n" signals nothing', async () => {
    const s = await bob(b);
    const no = await runOnTerminal(['kill', '--target', a.dsn(), '--target', b.dsn(), `${label(b)}:${s.pid}`], 'n\r');
    expect(no.screen).toContain(`${label(b)}:${s.pid}`);
    expect(no.screen).toContain('Terminate this session?');
    expect(no.code).toBe(2);
    expect(await alive(b, s.pid)).toBe(true);
  });

  it('a plain pid with two targets is ambiguous: exit 2 listing the node labels; nothing signalled', async () => {
    const s = await bob(a);
    const r = await kill(['--yes', String(s.pid)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`pid ${s.pid} is ambiguous: qualify it as NODE:PID (nodes: ${label(a)}, ${label(b)})`);
    expect(await alive(a, s.pid)).toBe(true);
  });

  it('an unknown node is exit 2 listing the labels; --target does not combine with --dsn', async () => {
    const s = await bob(a);
    const r = await kill(['--yes', `127.0.0.1:1:${s.pid}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`unknown node "127.0.0.1:1" in "127.0.0.1:1:${s.pid}" (nodes: ${label(a)}, ${label(b)})`);
    const mixed = await runCli(['kill', '--dsn', a.dsn(), '--target', b.dsn(), '--yes', `${label(b)}:${s.pid}`]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('does not combine');
    expect(await alive(a, s.pid)).toBe(true);
  });

  it('an unreachable node fails its own pids; the others are signalled: exit 3, or 2 when nothing was', async () => {
    const down = `postgresql://postgres:x@127.0.0.1:${await freePort()}/postgres`;
    const downLabel = down.replace(/^.*@(.*)\/postgres$/, '$1');
    const s = await bob(a);
    const r = await kill(['--yes', '--json', `${downLabel}:42`, `${label(a)}:${s.pid}`], [down, a.dsn()]);
    expect(r.code).toBe(3);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.results.map((x) => [x.node, x.pid, x.ok])).toEqual([
      [downLabel, 42, false],
      [label(a), s.pid, true],
    ]);
    expect(doc.results[0]!.error).toContain(`pid ${downLabel}:42 was not signalled: node ${downLabel} is unreachable`);
    expect(r.stderr).toContain('Connection refused');
    expect(await alive(a, s.pid)).toBe(false);

    const none = await kill(['--yes', `${downLabel}:42`], [down, a.dsn()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`pid ${downLabel}:42 was not signalled`);
  });
});
