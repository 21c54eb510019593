// pgrevoke sessions against real servers, run as a user would: the CLI as a subprocess.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startOnTerminal } from '../helpers/cli.js';
import { MAJORS, parkLogin, startCluster, type TestCluster } from '../helpers/cluster.js';

interface Session {
  pid: number;
  user: string | null;
  database: string | null;
  clientAddr: string | null;
  applicationName: string;
  backendType: string;
  state: string | null;
  idleSeconds: number | null;
  xactAgeSeconds: number | null;
  query: string | null;
  hidden: boolean;
}
interface Hidden {
  pid: number;
  via: string;
  hidden: boolean;
  user: null;
}
interface Doc {
  schemaVersion: number;
  sessions: Session[];
  hiddenBackends: Hidden[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pidOf = async (c: pg.Client): Promise<number> => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const LONG_QUERY = `SELECT pg_sleep(600) /* ${'x'.repeat(200)} end-of-long-query */`;

describe.each(MAJORS)('sessions on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let t0 = 0;
  const pids = { appA: 0, appDb1: 0, appTx: 0, appSocket: 0, App: 0, app2Active: 0 };
  const extra: pg.Client[] = [];

  const sessions = async (args: string[]) => {
    const r = await runCli(['sessions', '--dsn', cl.dsn(), '--json', ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Doc;
  };
  const pidsOf = (d: Doc) => sorted(d.sessions.map((s) => s.pid));

  beforeAll(async () => {
    cl = await startCluster(major);
    for (const role of ['app', 'App', 'app2']) await cl.sql(`CREATE ROLE "${role}" LOGIN PASSWORD 'pw-${role}'`);
    await cl.sql('CREATE DATABASE db1');
    await cl.sql('CREATE DATABASE db2');
    await cl.sql('GRANT pg_read_all_stats TO app2'); // irrelevant to the listing, which runs as postgres

    const a = await cl.connectAs('app', 'pw-app', 'postgres', { application_name: 'svc-a' });
    pids.appA = await pidOf(a);
    const b = await cl.connectAs('app', 'pw-app', 'db1', { application_name: 'svc-b' });
    pids.appDb1 = await pidOf(b);
    const tx = await cl.connectAs('app', 'pw-app', 'postgres', { application_name: 'svc-tx' });
    pids.appTx = await pidOf(tx);
    await tx.query('BEGIN');
    await tx.query('SELECT 1');
    const sock = await cl.connectAs('app', 'pw-app', 'postgres', { host: cl.socketDir, application_name: 'svc-sock' });
    pids.appSocket = await pidOf(sock);
    const upper = await cl.connectAs('App', 'pw-App', 'postgres', { application_name: 'Svc-A' });
    pids.App = await pidOf(upper);
    const act = await cl.connectAs('app2', 'pw-app2', 'db2', { application_name: 'svc-active' });
    pids.app2Active = await pidOf(act);
    void act.query(LONG_QUERY).catch(() => undefined);
    extra.push(a, b, tx, sock, upper, act);
    t0 = Date.now();
    for (;;) {
      const rows = await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pids.app2Active]);
      if (rows.length) break;
      await sleep(20);
    }
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('prints one JSON document: schemaVersion 1, sessions and hiddenBackends; not its own connection, no server processes', async () => {
    const doc = await sessions([]);
    expect(Object.keys(doc).sort()).toEqual(['hiddenBackends', 'schemaVersion', 'sessions']);
    expect(doc.schemaVersion).toBe(1);
    const all = Object.values(pids);
    expect(pidsOf(doc)).toEqual(expect.arrayContaining(all));
    expect(doc.sessions.some((s) => s.applicationName === 'pgrevoke')).toBe(false);
    expect(doc.sessions.every((s) => s.backendType === 'client backend' && s.hidden === false)).toBe(true);
    const active = doc.sessions.find((s) => s.pid === pids.app2Active)!;
    expect(active).toMatchObject({ user: 'app2', database: 'db2', state: 'active', idleSeconds: null, clientAddr: '127.0.0.1' });
    expect(active.query).toBe(LONG_QUERY); // whole in JSON
    expect(active.xactAgeSeconds).toBeGreaterThanOrEqual(0);
    for (const key of ['clientPort', 'backendStart', 'stateChange', 'xactStart', 'waitEventType', 'waitEvent', 'queryId', 'userOid'])
      expect(active).toHaveProperty(key);
    // started order by default
    const started = doc.sessions.map((s) => (s as unknown as { backendStart: string }).backendStart);
    expect(started).toEqual([...started].sort());
  });

  it('--all adds the server processes (checkpointer...)', async () => {
    const doc = await sessions(['--all']);
    expect(doc.sessions.map((s) => s.backendType)).toContain('checkpointer');
    expect(doc.sessions.some((s) => s.applicationName === 'pgrevoke')).toBe(false);
  });

  it('--user is exact and case-sensitive: app, App and app2 are three roles', async () => {
    expect(pidsOf(await sessions(['--user', 'app']))).toEqual(sorted([pids.appA, pids.appDb1, pids.appTx, pids.appSocket]));
    expect(pidsOf(await sessions(['--user', 'App']))).toEqual([pids.App]);
    expect(pidsOf(await sessions(['--user', 'app2']))).toEqual([pids.app2Active]);
    expect(pidsOf(await sessions(['--user', 'APP']))).toEqual([]);
    expect(pidsOf(await sessions(['--user', 'App', '--user', 'app2']))).toEqual(sorted([pids.App, pids.app2Active]));
  });

  it('--database, --state, --application filter exactly', async () => {
    expect(pidsOf(await sessions(['--database', 'db1']))).toEqual([pids.appDb1]);
    expect(pidsOf(await sessions(['--database', 'db1', '--database', 'db2']))).toEqual(sorted([pids.appDb1, pids.app2Active]));
    expect(pidsOf(await sessions(['--user', 'app', '--state', 'idle']))).toEqual(sorted([pids.appA, pids.appDb1, pids.appSocket]));
    expect(pidsOf(await sessions(['--state', 'idle in transaction']))).toEqual([pids.appTx]);
    expect(pidsOf(await sessions(['--state', 'active']))).toEqual([pids.app2Active]);
    expect(pidsOf(await sessions(['--application', 'svc-a']))).toEqual([pids.appA]);
    expect(pidsOf(await sessions(['--application', 'Svc-A']))).toEqual([pids.App]);
    expect(pidsOf(await sessions(['--application', 'svc']))).toEqual([]);
  });

  it('--client matches addresses and CIDR ranges; socket sessions have no address', async () => {
    const tcp = pidsOf(await sessions(['--user', 'app', '--client', '127.0.0.1/32']));
    expect(tcp).toEqual(sorted([pids.appA, pids.appDb1, pids.appTx]));
    expect(pidsOf(await sessions(['--user', 'app', '--client', '127.0.0.1']))).toEqual(tcp);
    expect(pidsOf(await sessions(['--user', 'app', '--client', '127.0.0.0/8']))).toEqual(tcp);
    expect(pidsOf(await sessions(['--client', '10.0.0.0/8']))).toEqual([]);
    expect(pidsOf(await sessions(['--client', '::1']))).toEqual([]);
  });

  it('--idle-longer-than counts from state_change and only in idle states', async () => {
    await sleep(Math.max(0, t0 + 3500 - Date.now()));
    // touch one session: its state_change is now
    const touched = extra[0]!;
    await touched.query('SELECT 1');
    const doc = await sessions(['--idle-longer-than', '3s', '--user', 'app', '--user', 'App', '--user', 'app2']);
    expect(pidsOf(doc)).toEqual(sorted([pids.appDb1, pids.appTx, pids.appSocket, pids.App]));
    for (const s of doc.sessions) expect(s.idleSeconds).toBeGreaterThan(3);
    expect(pidsOf(await sessions(['--idle-longer-than', '1h']))).toEqual([]);
  });

  it('--sort orders by the chosen column', async () => {
    const byPid = await sessions(['--sort', 'pid']);
    expect(byPid.sessions.map((s) => s.pid)).toEqual(pidsOf(byPid));
    // (the test's own superuser connection is a session too)
    const byUser = (await sessions(['--sort', 'user'])).sessions.map((s) => s.user).filter((u) => u !== 'postgres');
    expect(byUser).toEqual(['App', 'app', 'app', 'app', 'app', 'app2']); // exact names, byte order (C collation of name)
    const byIdle = (await sessions(['--sort', 'idle'])).sessions;
    const idle = byIdle.map((s) => s.idleSeconds);
    expect(idle[idle.length - 1]).toBeNull(); // the active session: not idle, last
    const known = idle.filter((x): x is number => x !== null);
    expect(known).toEqual([...known].sort((a, b) => b - a));
    const byXact = (await sessions(['--sort', 'xact_age'])).sessions;
    expect(byXact.slice(0, 2).map((s) => s.pid)).toEqual([pids.appTx, pids.app2Active]);
    expect(byXact.slice(2).every((s) => s.xactAgeSeconds === null)).toBe(true);
  });

  it('refuses bad options with exit 2', async () => {
    for (const args of [
      ['--sort', 'usename'],
      ['--idle-longer-than', 'soon'],
      ['--state', 'Idle'],
      ['--client', 'example.com'],
    ]) {
      const r = await runCli(['sessions', '--dsn', cl.dsn(), ...args]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/invalid --/);
    }
  });

  it('text mode truncates queries; the JSON keeps them whole', async () => {
    const r = await runCli(['sessions', '--dsn', cl.dsn(), '--user', 'app2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(String(pids.app2Active));
    expect(r.stdout).toContain('SELECT pg_sleep(600)');
    expect(r.stdout).toContain('\u2026');
    expect(r.stdout).not.toContain('end-of-long-query');
    for (const col of [
      'pid',
      'user',
      'database',
      'client',
      'application',
      'backend type',
      'started',
      'idle for',
      'state',
      'xact age',
      'wait',
      'query_id',
      'query',
    ])
      expect(r.stdout).toContain(col);
  });

  it('--watch without a terminal is refused with exit 2', async () => {
    const r = await runCli(['sessions', '--dsn', cl.dsn(), '--watch']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--watch needs a terminal');
  });

  it('--watch on a terminal redraws in place on the alternate screen until Ctrl+C, then restores it and exits 0', async () => {
    const t = startOnTerminal(['sessions', '--dsn', cl.dsn(), '--user', 'app2', '--watch', '0.2'], 30_000);
    const redraws = () => t.screen().split('pgrevoke sessions  ').length - 1;
    const end = Date.now() + 20_000;
    while (redraws() < 3 && Date.now() < end) await sleep(50);
    expect(redraws()).toBeGreaterThanOrEqual(3);
    expect(t.screen()).toContain('\x1b[?1049h');
    expect(t.screen()).toContain(String(pids.app2Active));
    t.type('\x03');
    expect(await t.exited).toBe(0);
    expect(t.screen()).toContain('\x1b[?1049l');
  });

  it('lists a backend held in the post-authentication window as hidden, role unknown, whatever the filters', async () => {
    await parkLogin(cl, 'app', 'pw-app', 120);
    let doc: Doc | undefined;
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      doc = await sessions(['--user', 'app']);
      if (doc.hiddenBackends.length) break;
      await sleep(100);
    }
    expect(doc!.hiddenBackends).toHaveLength(1);
    const h = doc!.hiddenBackends[0]!;
    expect(h).toMatchObject({ hidden: true, user: null, via: major >= 18 ? 'starting' : 'virtualxid' });
    expect(pidsOf(doc!)).not.toContain(h.pid);
    expect(pidsOf(doc!)).toEqual(sorted([pids.appA, pids.appDb1, pids.appTx, pids.appSocket]));
    const text = await runCli(['sessions', '--dsn', cl.dsn(), '--user', 'nobody']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('post-authentication, role unknown');
    expect(text.stdout).toContain(String(h.pid));
    await cl.sql('SELECT pg_terminate_backend($1)', [h.pid]);
  });
});
