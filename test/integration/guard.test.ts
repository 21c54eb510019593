// pgrevoke guard against real servers, run as a user would: the CLI as a long-running subprocess.
// One guard runs through the first part (each reason, bystanders, a server restart, SIGTERM); the
// later cases start their own guards (SIGINT, SIGHUP, --once, --dry-run, permissions, targets).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { GuardProcess, until, type GuardEventLine } from '../helpers/guard.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PW = 'pw';

interface AuditLine {
  time: string;
  node: string;
  operator: { dbUser: string; osUser: string; host: string };
  target: string;
  action: string;
  reason: string;
  result: string;
  detail: string | null;
  session: {
    pid: number;
    user: string | null;
    usesysid: number;
    database: string | null;
    client: string | null;
    application: string | null;
    query: string | null;
  };
}

async function readAudit(file: string): Promise<AuditLine[]> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  // only whole lines: the guard may be appending the next one as the test reads
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine);
}

describe.each(MAJORS)('guard on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  let audit = '';
  let denyFile = '';
  let guard: GuardProcess;
  const extra: pg.Client[] = [];
  const ROLES = [
    'nl',
    'exp',
    'dropme',
    'UPPER',
    'upper',
    'bystander',
    'excluded',
    'filedenied',
    'idler',
    'patient',
    'busy',
    'idlerole',
    'txer',
    'txrole',
    'late',
    'oncerole',
    'plain_victim',
    'dryrole',
    'hup1',
    'hup2',
    'introle',
    'multi',
  ];
  const REPLICATION = 'repl';

  /**
   * A session of the role; its pid comes from the start-up handshake (BackendKeyData), so a guard that
   * already denies the role may end it at any moment, even before connect() resolves.
   */
  const session = async (role: string, database = 'postgres') => {
    const c = new pg.Client({ host: '127.0.0.1', port: cl.port, user: role, password: PW, database, application_name: `${role}-app` });
    c.on('error', () => undefined);
    extra.push(c);
    const pidOf = () => (c as unknown as { processID: number | null }).processID;
    try {
      await c.connect();
    } catch (err) {
      if (!pidOf()) throw err;
    }
    return { c, pid: pidOf()! };
  };
  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length === 1;
  const gone = (pid: number, ms = 5000) => until(async () => !(await alive(pid)), ms, `pid ${pid} to end`);
  const auditFor = async (pid: number) => (await readAudit(audit)).filter((l) => l.session.pid === pid);
  const canQuery = async (c: pg.Client) => (await c.query<{ n: number }>('SELECT 41 + 1 AS n')).rows[0]!.n === 42;

  beforeAll(async () => {
    cl = await startCluster(major);
    for (const r of ROLES) await cl.sql(`CREATE ROLE "${r}" LOGIN PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE ${REPLICATION} LOGIN REPLICATION PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE su_victim LOGIN SUPERUSER PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE guardself LOGIN SUPERUSER PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE watcher LOGIN PASSWORD '${PW}' IN ROLE pg_signal_backend, pg_read_all_stats`);
    await cl.sql('CREATE DATABASE idledb');
    await cl.sql('CREATE DATABASE txdb');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-'));
    audit = path.join(dir, 'audit.log');
    denyFile = path.join(dir, 'deny.txt');
    await fs.writeFile(denyFile, '# denied roles, one per line\n');
    guard = new GuardProcess([
      '--dsn',
      cl.dsn(),
      '--interval',
      '100',
      '--json',
      '--audit-log',
      audit,
      '--deny',
      'UPPER',
      '--deny',
      'excluded',
      '--exclude-role',
      'excluded',
      '--deny-file',
      denyFile,
      '--idle-timeout',
      'idledb=1',
      '--idle-timeout-role',
      'patient=0',
      '--idle-timeout-role',
      'idlerole=1s',
      '--idle-in-transaction-timeout',
      'txdb=1',
      '--idle-in-transaction-timeout-role',
      'txrole=1000ms',
    ]);
    await guard.connected();
  });

  afterAll(async () => {
    if (guard?.child.exitCode === null) guard.child.kill('SIGKILL');
    await Promise.all(extra.map((c) => c.end().catch(() => undefined)));
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('NOLOGIN: a querying session runs nothing more than a second after ALTER ROLE; audited as role_nologin', async () => {
    const v = await session('nl');
    let lastOk = 0;
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        try {
          await v.c.query('SELECT 1');
          lastOk = performance.now();
        } catch {
          return;
        }
        await sleep(10);
      }
    })();
    await sleep(100);
    const t0 = performance.now();
    await cl.sql('ALTER ROLE nl NOLOGIN');
    await gone(v.pid);
    stopped = true;
    await loop;
    expect(lastOk - t0).toBeLessThan(1000);
    await until(async () => (await auditFor(v.pid)).length > 0, 3000, 'audit line');
    const [line] = await auditFor(v.pid);
    expect(line).toMatchObject({
      node: `127.0.0.1:${cl.port}`,
      operator: { dbUser: 'postgres' },
      target: 'nl',
      action: 'terminate',
      reason: 'role_nologin',
      result: 'done',
      session: { pid: v.pid, user: 'nl', database: 'postgres', application: 'nl-app', query: 'SELECT 1' },
    });
    expect(line!.session.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await fs.stat(audit)).mode & 0o777).toBe(0o600);
  });

  it('a walsender (logical replication connection) is ended like any session', async () => {
    const w = new pg.Client({
      host: '127.0.0.1',
      port: cl.port,
      user: REPLICATION,
      password: PW,
      database: 'postgres',
      replication: 'database',
    } as pg.ClientConfig);
    w.on('error', () => undefined);
    await w.connect();
    extra.push(w);
    await w.query('IDENTIFY_SYSTEM');
    const [ws] = await cl.sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'walsender'`, [
      REPLICATION,
    ]);
    expect(ws).toBeDefined();
    await cl.sql(`ALTER ROLE ${REPLICATION} NOLOGIN`);
    await gone(ws!.pid);
    await until(() => guard.events().some((e) => e.pid === ws!.pid), 3000, 'the kill event');
    expect(guard.events().find((e) => e.pid === ws!.pid)).toMatchObject({
      role: REPLICATION,
      reason: 'role_nologin',
      backendType: 'walsender',
    });
  });

  it('VALID UNTIL in the past: role_expired (whatever the auth method)', async () => {
    const v = await session('exp');
    await cl.sql(`ALTER ROLE exp VALID UNTIL '2000-01-01'`);
    await gone(v.pid);
    await until(async () => (await auditFor(v.pid)).length > 0, 3000, 'audit line');
    expect((await auditFor(v.pid))[0]).toMatchObject({ target: 'exp', reason: 'role_expired' });
  });

  it('DROP ROLE while connected: role_dropped, found by OID (the name is gone)', async () => {
    const v = await session('dropme');
    const oid = (await cl.sql<{ oid: string }>(`SELECT oid::int8::text AS oid FROM pg_roles WHERE rolname = 'dropme'`))[0]!.oid;
    await cl.sql('DROP ROLE dropme');
    await gone(v.pid);
    await until(async () => (await auditFor(v.pid)).length > 0, 3000, 'audit line');
    const [line] = await auditFor(v.pid);
    expect(line).toMatchObject({ target: '', reason: 'role_dropped', session: { user: null, usesysid: Number(oid) } });
    expect(line!.detail).toContain(`oid ${oid}`);
  });

  it('deny list: exact names only ("UPPER" ends, "upper" stays); an excluded role is never touched', async () => {
    const up = await session('UPPER');
    const low = await session('upper');
    const ex = await session('excluded');
    await gone(up.pid);
    await until(async () => (await auditFor(up.pid)).length > 0, 3000, 'audit line');
    expect((await auditFor(up.pid))[0]).toMatchObject({ target: 'UPPER', reason: 'denylisted' });
    await sleep(300);
    for (const s of [low, ex]) {
      expect(await alive(s.pid)).toBe(true);
      expect(await canQuery(s.c)).toBe(true);
    }
  });

  it('deny file: a name added to it is acted on at the next tick (mtime check), and the reload is said on stderr', async () => {
    const s = await session('filedenied');
    await sleep(300);
    expect(await alive(s.pid)).toBe(true);
    await fs.appendFile(denyFile, 'filedenied\n');
    await gone(s.pid);
    expect(guard.stderr).toMatch(/reloaded \(deny file changed\): 3 role\(s\) denied; added "filedenied"/);
    await until(async () => (await auditFor(s.pid)).length > 0, 3000, 'audit line');
    expect((await auditFor(s.pid))[0]).toMatchObject({ target: 'filedenied', reason: 'denylisted' });
  });

  it('idle timeout per database; a busy session and a role whose own limit is 0 stay', async () => {
    const idle = await session('idler', 'idledb');
    const lastActivity = performance.now();
    const patient = await session('patient', 'idledb');
    const busy = await session('busy', 'idledb');
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        await busy.c.query('SELECT 1');
        await sleep(200);
      }
    })();
    await gone(idle.pid);
    const after = performance.now() - lastActivity;
    expect(after).toBeGreaterThan(900);
    expect(after).toBeLessThan(3000);
    await until(async () => (await auditFor(idle.pid)).length > 0, 3000, 'audit line');
    const [line] = await auditFor(idle.pid);
    expect(line).toMatchObject({ target: 'idler', reason: 'idle_timeout', session: { database: 'idledb' } });
    expect(line!.detail).toMatch(/^idle for [\d.]+s, limit 1s \(database "idledb"\)$/);
    await sleep(500);
    stop = true;
    await loop;
    expect(await alive(patient.pid)).toBe(true);
    expect(await alive(busy.pid)).toBe(true);
    expect(await canQuery(patient.c)).toBe(true);
    // idle from now on, it would be next: leave
    await busy.c.end();
  });

  it('idle timeout per role, in any database', async () => {
    const s = await session('idlerole', 'postgres');
    await gone(s.pid);
    await until(async () => (await auditFor(s.pid)).length > 0, 3000, 'audit line');
    const [line] = await auditFor(s.pid);
    expect(line).toMatchObject({ reason: 'idle_timeout' });
    expect(line!.detail).toMatch(/limit 1s \(role "idlerole"\)$/);
  });

  it('idle in transaction (per database and per role) ends the session and its transaction; plain idle stays', async () => {
    const tx = await session('txer', 'txdb');
    const plain = await session('bystander', 'txdb');
    const txr = await session('txrole', 'postgres');
    for (const s of [tx, txr]) {
      await s.c.query('BEGIN');
      await s.c.query('SELECT 1');
    }
    await gone(tx.pid);
    await gone(txr.pid);
    await until(async () => (await auditFor(tx.pid)).length > 0 && (await auditFor(txr.pid)).length > 0, 3000, 'audit lines');
    const [a] = await auditFor(tx.pid);
    const [b] = await auditFor(txr.pid);
    expect(a).toMatchObject({
      reason: 'idle_timeout',
      detail: expect.stringMatching(/^idle in transaction for [\d.]+s, limit 1s \(database "txdb"\)$/),
    });
    expect(b).toMatchObject({ reason: 'idle_timeout', detail: expect.stringMatching(/limit 1s \(role "txrole"\)$/) });
    expect(await alive(plain.pid)).toBe(true);
    expect(await canQuery(plain.c)).toBe(true);
  });

  it('bystanders are untouched: their sessions survive and can query, and nothing about them is logged', async () => {
    const by = await session('bystander');
    await sleep(600);
    expect(await alive(by.pid)).toBe(true);
    expect(await canQuery(by.c)).toBe(true);
    expect(await canQuery(cl.admin)).toBe(true);
    const roles = new Set((await readAudit(audit)).map((l) => l.target));
    for (const r of ['bystander', 'upper', 'patient', 'busy', 'excluded', 'postgres']) expect(roles.has(r), r).toBe(false);
    const events = guard.events();
    for (const r of ['bystander', 'upper', 'patient', 'busy', 'excluded']) expect(events.some((e) => e.role === r)).toBe(false);
  });

  it('--json: stdout is JSON Lines, one kill per session; status goes to stderr', async () => {
    // each audited kill is on stdout too (stdout may trail the audit file by a pipe read)
    const pidsOf = (xs: { pid: number }[]) => JSON.stringify(xs.map((x) => x.pid).sort());
    await until(async () => pidsOf((await readAudit(audit)).map((l) => l.session)) === pidsOf(guard.events()), 3000, 'stdout = audit log');
    const events = guard.events();
    expect(events.length).toBeGreaterThanOrEqual(10);
    expect(events.every((e) => e.v === 1 && e.event === 'kill' && e.terminated && !e.dryRun)).toBe(true);
    expect(new Set(events.map((e) => e.pid)).size).toBe(events.length);
    expect(new Set(events.map((e) => e.reason))).toEqual(
      new Set(['role_nologin', 'role_expired', 'role_dropped', 'denylisted', 'idle_timeout']),
    );
    expect(guard.stderr).toContain(`127.0.0.1:${cl.port}: connected as postgres`);
  });

  it('survives a server restart: reconnects with backoff and still kills a new NOLOGIN victim', async () => {
    await cl.restart();
    // the restart ended the harness's own admin connection too
    const admin = new pg.Client({ connectionString: cl.dsn() });
    admin.on('error', () => undefined);
    await admin.connect();
    extra.push(admin);
    cl.admin = admin;
    await until(() => /connection lost: .*; reconnecting in \d+ ms/.test(guard.stderr), 10_000, 'connection lost');
    await until(() => guard.stderr.includes('reconnected as postgres'), 15_000, `reconnected\n${guard.stderr}`);
    expect(guard.child.exitCode).toBeNull();
    const v = await session('late');
    await cl.sql('ALTER ROLE late NOLOGIN');
    await gone(v.pid);
    await until(async () => (await auditFor(v.pid)).length > 0, 3000, 'audit line');
    expect((await auditFor(v.pid))[0]).toMatchObject({ target: 'late', reason: 'role_nologin' });
  });

  it('SIGTERM: stops cleanly with exit 0, its connection closed, the audit log complete', async () => {
    const code = await guard.stop('SIGTERM');
    expect(code).toBe(0);
    expect(guard.stderr).toContain('SIGTERM: stopping');
    expect(guard.stderr).toContain('pgrevoke guard: stopped');
    await until(
      async () => (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard'`)).length === 0,
      3000,
      'guard backend gone',
    );
    expect((await readAudit(audit)).length).toBe(guard.events().length);
  });

  it('SIGINT stops it cleanly too (exit 0)', async () => {
    const g = new GuardProcess(['--dsn', cl.dsn(), '--interval', '100', '--deny', 'introle']);
    await g.connected();
    const s = await session('introle');
    await gone(s.pid);
    await until(() => g.stdout.includes('\n'), 3000, 'the kill line');
    expect(g.stdout).toMatch(
      new RegExp(
        `^\\S+Z 127\\.0\\.0\\.1:${cl.port} kill pid ${s.pid} role "introle" db "postgres" app "introle-app" client 127\\.0\\.0\\.1:\\d+ reason denylisted \\(role is on the deny list\\) query: -\\n$`,
      ),
    );
    expect(await g.stop('SIGINT')).toBe(0);
    expect(g.stderr).toContain('SIGINT: stopping');
  });

  it('SIGHUP re-reads the deny file even when nothing about its mtime says so', async () => {
    const file = path.join(dir, 'hup.txt');
    await fs.writeFile(file, 'hup1\n');
    await fs.utimes(file, 1_000_000, 1_000_000);
    const g = new GuardProcess(['--dsn', cl.dsn(), '--interval', '100', '--json', '--deny-file', file]);
    await g.connected();
    const s1 = await session('hup1');
    await gone(s1.pid);
    const s2 = await session('hup2');
    // same size, same inode, same mtime: the tick's change check cannot see it
    await fs.writeFile(file, 'hup2\n');
    await fs.utimes(file, 1_000_000, 1_000_000);
    await sleep(600);
    expect(await alive(s2.pid)).toBe(true);
    expect(g.stderr).not.toContain('reloaded');
    g.child.kill('SIGHUP');
    await until(
      () => g.stderr.includes('reloaded (SIGHUP): 1 role(s) denied; added "hup2"; removed "hup1"'),
      5000,
      `reloaded\n${g.stderr}`,
    );
    await gone(s2.pid);
    await until(() => g.events().length === 2, 3000, 'the second kill line');
    expect(g.events().map((e) => [e.pid, e.reason])).toEqual([
      [s1.pid, 'denylisted'],
      [s2.pid, 'denylisted'],
    ]);
    expect(await g.stop()).toBe(0);
  });

  it('--once: exit 0 when nothing is found, 1 when it acted', async () => {
    const none = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--deny', 'oncerole', '--json']);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout)).toMatchObject({ event: 'nothing_found', nodesChecked: 1 });
    const s = await session('oncerole');
    const r = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--deny', 'oncerole', '--json']);
    expect(r.code).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GuardEventLine);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: 'kill', pid: s.pid, role: 'oncerole', reason: 'denylisted', terminated: true });
    await gone(s.pid, 2000);
  });

  it('--once that finds nothing ends with one line: nodes checked, sessions seen, nothing to do; --json: one object, the same counts', async () => {
    await session('bystander');
    await session('bystander');
    // what the guard looks at: client sessions with a role (the harness's own included), never the guard's own
    const sessions = async () =>
      (
        await cl.sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid IS NOT NULL AND backend_type IN ('client backend', 'walsender')`,
        )
      )[0]!.n;
    const n = await sessions();
    expect(n).toBeGreaterThanOrEqual(3);
    const text = await runCli(['guard', '--dsn', cl.dsn(), '--once']);
    const json = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--json']);
    expect(await sessions()).toBe(n); // none came or went meanwhile
    const line = `pgrevoke guard: 1 node checked, ${n} sessions seen, nothing to do`;
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe('');
    expect(text.stderr.trim().split('\n').at(-1)).toBe(line);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      v: 1,
      event: 'nothing_found',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      nodesChecked: 1,
      nodesFailed: 0,
      sessionsSeen: n,
      dryRun: false,
    });
    expect(json.stderr.trim().split('\n').at(-1)).toBe(line);
    // an excluded role's sessions are not looked at, so not counted
    const excluded = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--exclude-role', 'bystander']);
    const bystanders = (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'bystander'`))[0]!.n;
    const rest = n - bystanders;
    expect(excluded.stderr).toContain(`1 node checked, ${rest} session${rest === 1 ? '' : 's'} seen, nothing to do`);
  });

  it('--dry-run kills nothing: reports would_kill once per session, writes no audit line', async () => {
    const s = await session('dryrole');
    const dryAudit = path.join(dir, 'dry-audit.log');
    const once = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--dry-run', '--deny', 'dryrole']);
    expect(once.code).toBe(1);
    expect(once.stdout).toContain(`would-kill pid ${s.pid} role "dryrole"`);
    const g = new GuardProcess([
      '--dsn',
      cl.dsn(),
      '--interval',
      '100',
      '--json',
      '--dry-run',
      '--deny',
      'dryrole',
      '--audit-log',
      dryAudit,
    ]);
    await g.connected();
    await until(() => g.events().length > 0, 3000, 'a would_kill event');
    await sleep(500);
    expect(g.stderr).toContain('DRY RUN');
    expect(g.events()).toEqual([
      expect.objectContaining({ event: 'would_kill', pid: s.pid, terminated: false, dryRun: true, reason: 'denylisted' }),
    ]);
    expect(await g.stop()).toBe(0);
    expect(await alive(s.pid)).toBe(true);
    expect(await canQuery(s.c)).toBe(true);
    // checked before the start, not created: a dry run does not even open it
    await expect(fs.access(dryAudit)).rejects.toThrow(/ENOENT/);
  });

  it('never its own backend, even when its own role is denied', async () => {
    const other = await session('guardself');
    const dsn = cl.url('guardself', PW);
    const g = new GuardProcess(['--dsn', dsn, '--interval', '100', '--json', '--deny', 'guardself']);
    await g.connected();
    await gone(other.pid);
    await sleep(500);
    const own = await cl.sql<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE usename = 'guardself' AND application_name = 'pgrevoke-guard'`,
    );
    expect(own).toHaveLength(1);
    expect(g.events().map((e) => e.pid)).toEqual([other.pid]);
    expect(await g.stop()).toBe(0);
  });

  it("without superuser: a superuser's session is reported denied, the others still end in the same pass", async () => {
    const su = await session('su_victim');
    const plain = await session('plain_victim');
    const r = await runCli(['guard', '--dsn', cl.url('watcher', PW), '--once', '--json', '--deny', 'su_victim', '--deny', 'plain_victim']);
    expect(r.code).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GuardEventLine & { error?: string });
    expect(lines.map((l) => [l.event, l.role]).sort()).toEqual([
      ['denied', 'su_victim'],
      ['kill', 'plain_victim'],
    ]);
    expect(lines.find((l) => l.event === 'denied')!.error).toMatch(/permission denied/);
    expect(r.stderr).toContain("superusers' sessions cannot be terminated");
    await gone(plain.pid, 2000);
    expect(await alive(su.pid)).toBe(true);
  });

  it('a bad password or an unknown database at start is a usage error (exit 2), also without --once', async () => {
    const bad = await runCli(['guard', '--dsn', cl.url('postgres', 'wrong')], {}, { timeoutMs: 20_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('28P01');
    const nodb = await runCli(['guard', '--dsn', cl.dsn('nosuchdb'), '--once'], {}, { timeoutMs: 20_000 });
    expect(nodb.code).toBe(2);
    expect(nodb.stderr).toContain('3D000');
    const usage = await runCli(['guard', '--dsn', cl.dsn(), '--idle-timeout', 'nodb', '--once']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('invalid --idle-timeout');
  });

  it('several --target nodes: one loop each, named host:port', async () => {
    const s = await session('multi');
    const r = await runCli([
      'guard',
      '--once',
      '--json',
      '--deny',
      'multi',
      '--target',
      cl.dsn(),
      '--target',
      `host=${cl.socketDir} port=${cl.port} user=postgres dbname=postgres`,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`127.0.0.1:${cl.port}: connected as postgres`);
    expect(r.stderr).toContain(`${cl.socketDir}:${cl.port}: connected as postgres`);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GuardEventLine);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.every((l) => l.pid === s.pid && [`127.0.0.1:${cl.port}`, `${cl.socketDir}:${cl.port}`].includes(l.node))).toBe(true);
    await gone(s.pid, 2000);
  });
});
