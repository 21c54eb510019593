// pgrevoke guard with the failed-login lockout on (issue 16): what reading the server log adds to
// the guard's cost, and how soon after the Nth failed login the server refuses the next login.
// One embedded cluster logs through the collector to two files at once: stderr (log_line_prefix
// with %h) and csvlog. Guard configurations, measured alternately in the same run: no lockout
// flags; --lockout-after 5 reading the log over SQL (csvlog); the same with --server-log on the
// csvlog file; the same with --server-log on the stderr file. Conditions: a quiet server, and a
// steady trickle of failed logins (20/s, wrong passwords of real roles from 4 127.0.0.x source
// addresses, never 5 of one pair within a guard's life, so no lockout forms: the steady cost of
// reading and counting, not the one-off pg_hba.conf edits). Per condition: lag trials as bench
// guard runs them (an attacker's 20 sessions, NOLOGIN at t0, lag = its last successful query by
// the server's clock - t0), then CPU windows in A B B A order (the guard's Node process and every
// backend serving it, found by its sockets' ports). Then the Nth failure to the reject in force:
// per mode a fresh guard and state, N wrong passwords, then logins with the right password from
// the same address until one is refused. Method notes: bench/lockout-notes.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster, DEFAULT_MAJOR } from '../src/embedded/cluster.js';
import { DEFAULT_INTERVAL_MS } from '../src/guard/options.js';
import { FileLogSource } from '../src/serverlog/file-source.js';
import type { AuthFailure } from '../src/serverlog/types.js';
import { boundSocket } from '../test/helpers/serverlog.js';
import { BIN, cpuSeconds, machine, median, runProcess, waitUntil } from './lib.js';

const MAJOR = Number(process.env.BENCH_LOCKOUT_MAJOR ?? DEFAULT_MAJOR);
const LAG_TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const NTH_TRIALS = Number(process.env.BENCH_LOCKOUT_TRIALS ?? 12);
const WINDOW_MS = Number(process.env.BENCH_LOCKOUT_WINDOW_MS ?? 15_000);
const AFTER = 5;
const SESSIONS = 20;
const ATTACK_INTERVAL_MS = 10;
const TRICKLE_PER_S = 20;
const TRICKLE_ADDRESSES = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'];
/** Roles the trickle fails on: with 4 addresses a pair comes back every 800 failures (40 s), under 5 in any guard's life. */
const TRICKLE_ROLES = 200;
const TARGET_MS = 1000;
const ATTACK_QUERY = `SELECT count(*), (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at FROM loot`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  if (!(await waitUntil(pred, ms, 10))) throw new Error(`bench lockout: timed out waiting for ${what}`);
}

interface Bench {
  cl: EmbeddedCluster;
  admin: pg.Client;
  dir: string;
  csvFile: string;
  stderrFile: string;
  hba: string;
}

/** A login from `from` (a bound source address): 'allow', or the SQLSTATE it was refused with. */
async function login(b: Bench, user: string, password: string, from: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: b.cl.port, user, password, database: 'postgres', stream: boundSocket(from) });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return 'allow';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
}

/** Local TCP ports of a process's sockets (/proc/<pid>/fd to socket inodes, /proc/net/tcp to ports). */
function socketPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

interface Running {
  child: ChildProcess;
  stderr: () => string;
  /** The backends serving the guard now (whatever connections it has: the tick's, the lockout's). */
  backends: () => Promise<number[]>;
  stop: () => Promise<number | null>;
}

/** Start a guard with `args`; wait until it is connected, has a backend, and has run a while (its first log read done). */
async function startGuard(b: Bench, args: string[], stateDir: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'guard',
      '-h',
      '127.0.0.1',
      '-p',
      String(b.cl.port),
      '-U',
      'postgres',
      '--json',
      '--audit-log',
      path.join(b.dir, 'audit.log'),
      ...args,
    ],
    {
      env: { ...process.env, PGPASSWORD: b.cl.password, NO_COLOR: '1', PGREVOKE_STATE_DIR: stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const backends = async () => {
    const ports = child.exitCode === null ? socketPorts(child.pid!) : [];
    const q = `SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND pid <> pg_backend_pid()`;
    return (await b.admin.query<{ pid: number }>(q, [ports])).rows.map((r) => r.pid);
  };
  await until(() => stderr.includes('connected as'), 30_000, `guard to connect: ${stderr}`);
  await until(async () => (await backends()).length >= 1, 10_000, 'a guard backend');
  // past its first ticks (which learn every role) and its first log read (which starts at the end)
  await sleep(1500);
  return {
    child,
    stderr: () => stderr,
    backends,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** 20 failed logins a second, round robin over the roles and the addresses (a pair every 40 s). */
class Trickle {
  private timer: NodeJS.Timeout | null = null;
  private inflight = new Set<Promise<void>>();
  private n = 0;
  private startedAt = 0;
  private stoppedAt: number | null = null;
  readonly outcomes: Record<string, number> = {};
  skipped = 0;

  constructor(private readonly b: Bench) {}

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.one(), 1000 / TRICKLE_PER_S);
  }

  private one(): void {
    // an attempt slower than the period must not pile up: past 10 in flight, skip (and say so)
    if (this.inflight.size >= 10) return void this.skipped++;
    const k = this.n++;
    const from = TRICKLE_ADDRESSES[Math.floor(k / TRICKLE_ROLES) % TRICKLE_ADDRESSES.length]!;
    const p = login(this.b, `t_${k % TRICKLE_ROLES}`, 'wrong', from).then((code) => {
      this.outcomes[code] = (this.outcomes[code] ?? 0) + 1;
      this.inflight.delete(p);
    });
    this.inflight.add(p);
  }

  /** Attempts per second so far. */
  rate(): number {
    return this.n / (((this.stoppedAt ?? performance.now()) - this.startedAt) / 1000);
  }

  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      this.stoppedAt = performance.now();
    }
    await Promise.all([...this.inflight]);
  }
}

interface Load {
  seconds: number;
  backendCpuS: number;
  processCpuS: number;
  /** Backends serving the guard at the window's end, and those gone before it (their CPU is not counted). */
  backends: number;
  lost: number;
}

/** One way of running the guard. */
interface Variant {
  label: string;
  args: (b: Bench) => string[];
  lags: Map<string, number[]>;
  loads: Map<string, Load[]>;
}

function variants(): Variant[] {
  const v = (label: string, args: (b: Bench) => string[]): Variant => ({ label, args, lags: new Map(), loads: new Map() });
  const lockout = ['--lockout-after', String(AFTER)];
  return [
    v('no lockout flags', () => []),
    v(`\`--lockout-after ${AFTER}\`, log over SQL (csvlog)`, () => lockout),
    v(`\`--lockout-after ${AFTER} --server-log\` csvlog file`, (b) => [...lockout, '--server-log', b.csvFile]),
    v(`\`--lockout-after ${AFTER} --server-log\` stderr file (%h)`, (b) => [...lockout, '--server-log', b.stderrFile]),
  ];
}

/** Guard exit codes on SIGTERM, over the whole run. */
const exits = new Set<number | null>();

const CONDITIONS = {
  quiet: 'quiet server',
  trickle: `${TRICKLE_PER_S} failed logins/s from ${TRICKLE_ADDRESSES.length} addresses`,
};

async function sessionCount(admin: pg.Client, where: string): Promise<number> {
  return (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${where}`)).rows[0]!.n;
}

/** One lag trial: a fresh guard, NOLOGIN at t0, every victim session gone; lag by the server's clock. */
async function lagTrial(b: Bench, v: Variant, cond: string, attacker: Attacker): Promise<void> {
  const victims = () => sessionCount(b.admin, `usename = 'victim'`);
  await until(async () => (await victims()) >= SESSIONS, 30_000, 'the attacker at full strength');
  // the attacker's logins refused after NOLOGIN are failures too (from 127.0.0.1, where the guard is, but not
  // its role: they count), so a lockout guard locks victim out there: each trial its own state, pg_hba.conf put back after
  const stateDir = await fs.mkdtemp(path.join(b.dir, 'state-'));
  const g = await startGuard(b, v.args(b), stateDir);
  try {
    const before = attacker.stats.successes;
    await until(() => attacker.stats.successes > before + 100, 10_000, 'the attacker querying');
    // land the ALTER at a random phase of the guard's tick
    await sleep(Math.random() * 250);
    const t0 = Date.now();
    await b.admin.query('ALTER ROLE victim NOLOGIN');
    await until(async () => (await victims()) === 0, 10_000, `every victim session to end: ${g.stderr()}`);
    await sleep(300);
    const lags = v.lags.get(cond) ?? [];
    lags.push(Math.max(0, (attacker.stats.lastServerAt ?? t0) - t0));
    v.lags.set(cond, lags);
  } finally {
    exits.add(await g.stop());
    await resetHba(b);
    await b.admin.query('ALTER ROLE victim LOGIN');
  }
}

function cpuOrNull(pid: number): number | null {
  try {
    return cpuSeconds(pid);
  } catch {
    return null;
  }
}

/** One CPU window of a fresh guard: its Node process and every backend serving it (one started within counts whole). */
async function loadWindow(b: Bench, v: Variant, cond: string): Promise<void> {
  // a state directory of its own: no log cursor of an earlier window's guard to resume from (a backlog)
  const g = await startGuard(b, v.args(b), await fs.mkdtemp(path.join(b.dir, 'state-')));
  try {
    const pids0 = await g.backends();
    const b0 = new Map(pids0.map((pid) => [pid, cpuOrNull(pid) ?? 0]));
    const p0 = cpuSeconds(g.child.pid!);
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const pids1 = await g.backends();
    const backendCpuS = pids1.reduce((a, pid) => a + (cpuOrNull(pid) ?? 0) - (b0.get(pid) ?? 0), 0);
    const processCpuS = cpuSeconds(g.child.pid!) - p0;
    const seconds = (performance.now() - t0) / 1000;
    const list = v.loads.get(cond) ?? [];
    list.push({ seconds, backendCpuS, processCpuS, backends: pids1.length, lost: pids0.filter((p) => !pids1.includes(p)).length });
    v.loads.set(cond, list);
  } finally {
    exits.add(await g.stop());
  }
}

/** One condition: lag trials under the attacker (variants alternating), then CPU windows without it, A B B A. */
async function condition(b: Bench, vs: Variant[], cond: string): Promise<void> {
  const attacker = new Attacker({
    host: '127.0.0.1',
    port: b.cl.port,
    user: 'victim',
    password: 'v',
    sessions: SESSIONS,
    intervalMs: ATTACK_INTERVAL_MS,
    query: ATTACK_QUERY,
    serverStampColumn: 'at',
  });
  attacker.start();
  try {
    for (let i = 0; i < LAG_TRIALS; i++) for (const v of i % 2 ? [...vs].reverse() : vs) await lagTrial(b, v, cond, attacker);
  } finally {
    await attacker.stop();
  }
  await until(async () => (await sessionCount(b.admin, `usename = 'victim'`)) === 0, 10_000, 'the attacker gone');
  for (const v of [...vs, ...[...vs].reverse()]) await loadWindow(b, v, cond);
}

/** One trial of the Nth failure to the refusal: times in ms, null where it did not happen within 5 s. */
interface Nth {
  /** Client: the Nth failed attempt's completion to the first refused attempt's completion. */
  client: number | null;
  /** Client: the Nth failure's completion to the start of the first refused attempt (the reject was in force by then). */
  clientStart: number | null;
  /** Server log: the Nth failure's log time to the refusal's. */
  server: number | null;
  probes: number;
  /** How the first refused probe was refused: SQLSTATE and the log's kind. */
  refusedWith: string;
}

/** A lockout mode: the guard's flags, and per trial an address, the logins that fail there, and the role that probes. */
interface Mode {
  label: string;
  args: (b: Bench) => string[];
  trial: (i: number) => { address: string; failing: string[]; probe: string };
  results: Nth[];
  /** The lockouts' counts and kinds as `pgrevoke lockouts --json` listed them after the mode's trials. */
  listed: string;
}

function modes(): Mode[] {
  const m = (label: string, args: (b: Bench) => string[], trial: Mode['trial']): Mode => ({ label, args, trial, results: [], listed: '' });
  const lockout = ['--lockout-after', String(AFTER)];
  const times = (user: string) => Array.from({ length: AFTER }, () => user);
  return [
    m(
      `\`--lockout-after ${AFTER}\` (by address), log over SQL`,
      () => lockout,
      (i) => ({ address: '127.0.0.2', failing: times(`lk_a_${i}`), probe: `lk_a_${i}` }),
    ),
    m(
      `\`--lockout-after ${AFTER} --server-log\` stderr file`,
      (b) => [...lockout, '--server-log', b.stderrFile],
      (i) => ({ address: '127.0.0.2', failing: times(`lk_f_${i}`), probe: `lk_f_${i}` }),
    ),
    // a /24 of its own per trial: bans near each other may merge into a prefix (src/lockout/policy.ts)
    m(
      `\`--ban-address-after ${AFTER}\`, log over SQL`,
      () => ['--ban-address-after', String(AFTER)],
      (i) => ({
        address: `127.0.${40 + i}.2`,
        failing: Array.from({ length: AFTER }, (_, j) => `nobody_${i}_${j}`),
        probe: 'prober',
      }),
    ),
    m(
      `\`--lockout-after ${AFTER} --lockout-by role\`, log over SQL`,
      () => [...lockout, '--lockout-by', 'role'],
      (i) => ({
        address: '127.0.0.3',
        failing: times(`lk_r_${i}`),
        probe: `lk_r_${i}`,
      }),
    ),
  ];
}

/** The server's log times of the trial's Nth failure and of the first refusal of the probe, from the csvlog. */
async function logTimes(
  reader: FileLogSource,
  t: ReturnType<Mode['trial']>,
): Promise<{ nthAt: number | null; refusal: AuthFailure | null }> {
  const seen: AuthFailure[] = [];
  const failing = new Set(t.failing);
  const find = () => ({
    nth: seen.filter((f) => f.address === t.address && failing.has(f.user) && f.sqlstate === '28P01')[AFTER - 1] ?? null,
    refusal: seen.find((f) => f.address === t.address && f.user === t.probe && f.sqlstate === '28000') ?? null,
  });
  await waitUntil(
    async () => {
      seen.push(...(await reader.poll()));
      const { nth, refusal } = find();
      return nth !== null && refusal !== null;
    },
    5000,
    100,
  );
  const { nth, refusal } = find();
  return { nthAt: nth ? Date.parse(nth.at) : null, refusal };
}

/** N failed logins, then logins with the right password from the same address until one is refused (at most 5 s). */
async function nthTrial(b: Bench, m: Mode, i: number): Promise<Nth> {
  const t = m.trial(i);
  const reader = new FileLogSource({ file: b.csvFile });
  await reader.poll(); // the first poll starts at the end
  // the Nth failure at a random phase of the guard's lockout pass (every 400 ms)
  await sleep(Math.random() * 500);
  let nthEnd = 0;
  for (const user of t.failing) {
    const code = await login(b, user, 'wrong', t.address);
    if (code !== '28P01') throw new Error(`bench lockout: a failing login of ${user} from ${t.address} gave ${code}`);
    nthEnd = Date.now();
  }
  let probes = 0;
  let refused: { start: number; end: number; code: string } | null = null;
  while (!refused && Date.now() - nthEnd < 5000) {
    const start = Date.now();
    const code = await login(b, t.probe, 'pw', t.address);
    probes++;
    if (code !== 'allow') refused = { start, end: Date.now(), code };
  }
  const { nthAt, refusal } = await logTimes(reader, t);
  await reader.close();
  return {
    client: refused ? refused.end - nthEnd : null,
    clientStart: refused ? refused.start - nthEnd : null,
    server: nthAt !== null && refusal ? Date.parse(refusal.at) - nthAt : null,
    probes,
    refusedWith: refused ? `${refused.code} ${refusal?.kind ?? '(not in the log)'}` : 'not refused within 5 s',
  };
}

async function resetHba(b: Bench): Promise<void> {
  await b.cl.writeDataFile('pg_hba.conf', b.hba);
  await b.admin.query('SELECT pg_reload_conf()');
}

/** A mode's trials under one fresh guard and state directory, pg_hba.conf put back before and after. */
async function nthMode(b: Bench, m: Mode): Promise<void> {
  await resetHba(b);
  const stateDir = await fs.mkdtemp(path.join(b.dir, 'state-'));
  const g = await startGuard(b, m.args(b), stateDir);
  try {
    for (let i = 0; i < NTH_TRIALS; i++) m.results.push(await nthTrial(b, m, i));
  } finally {
    exits.add(await g.stop());
  }
  const r = await runProcess(process.execPath, [BIN, 'lockouts', '--json'], { ...process.env, PGREVOKE_STATE_DIR: stateDir });
  const listed = (JSON.parse(r.stdout) as { lockouts: { kind: string; count: number }[] }).lockouts;
  const tally = new Map<string, number>();
  for (const l of listed) tally.set(`${l.kind}, count ${l.count}`, (tally.get(`${l.kind}, count ${l.count}`) ?? 0) + 1);
  m.listed = [...tally].map(([k, n]) => `${n} x ${k}`).join('; ') || 'none';
  await resetHba(b);
}

/** The collector writes both files; %h puts the address on every stderr line. No rotation during the run. */
const LOG_SETTINGS = {
  logging_collector: 'on',
  log_destination: `'stderr,csvlog'`,
  log_filename: `'postgresql.log'`,
  log_rotation_age: 0,
  log_rotation_size: 0,
  log_line_prefix: `'%m [%p] %h %q%u@%d '`,
};

/** Roles: the attacker's, the trickle's, one per Nth trial and mode, and the ban trials' prober; all password 'pw' but victim's. */
function rolesSql(): string {
  const loop = (prefix: string, n: number) =>
    `FOR i IN 0..${n - 1} LOOP EXECUTE format('CREATE ROLE ${prefix}_%s LOGIN PASSWORD %L', i, 'pw'); END LOOP;`;
  return `DO $$ BEGIN
    ${loop('t', TRICKLE_ROLES)} ${loop('lk_a', NTH_TRIALS)} ${loop('lk_f', NTH_TRIALS)} ${loop('lk_r', NTH_TRIALS)}
    CREATE ROLE prober LOGIN PASSWORD 'pw';
    CREATE ROLE victim LOGIN PASSWORD 'v';
    CREATE TABLE loot AS SELECT g AS id FROM generate_series(1, 100) g;
    GRANT SELECT ON loot TO victim;
  END $$`;
}

/** initdb's file takes TCP from 127.0.0.1 only: the trials log in from the rest of 127.0.0.0/8 too. */
const HBA = ['local all all trust', 'host all all 127.0.0.0/8 scram-sha-256', 'host all all ::1/128 scram-sha-256'].join('\n') + '\n';

async function setUp(): Promise<Bench> {
  const cl = new EmbeddedCluster({ major: MAJOR, password: 'bench', settings: LOG_SETTINGS });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-bench-lockout-'));
  await admin.query(rolesSql());
  const logDir = path.join(cl.dataDir, 'log');
  const b = {
    cl,
    admin,
    dir,
    csvFile: path.join(logDir, 'postgresql.csv'),
    stderrFile: path.join(logDir, 'postgresql.log'),
    hba: HBA,
  };
  await resetHba(b);
  await until(
    async () =>
      (
        await Promise.all(
          [b.csvFile, b.stderrFile].map((f) =>
            fs.stat(f).then(
              () => true,
              () => false,
            ),
          ),
        )
      ).every(Boolean),
    10_000,
    'the collector to open both log files',
  );
  return b;
}

/** The commit the bundle was built from, and whether src/ had uncommitted changes (others' work in progress) then. */
function buildOf(): string {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', 'src');
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ` (plus uncommitted changes in src/: ${dirty.split('\n').length} files)` : ''}`;
  } catch {
    return 'unknown commit';
  }
}

export async function benchLockout(): Promise<string> {
  const before = { load: os.loadavg()[0]!, build: buildOf() };
  const b = await setUp();
  const vs = variants();
  const ms = modes();
  const trickle = new Trickle(b);
  const version = (await b.admin.query<{ v: string }>(`SELECT version() AS v`)).rows[0]!.v;
  try {
    for (const m of ms) await nthMode(b, m);
    await condition(b, vs, CONDITIONS.quiet);
    trickle.start();
    await condition(b, vs, CONDITIONS.trickle);
    await trickle.stop();
  } finally {
    await trickle.stop();
    await b.admin.end().catch(() => undefined);
    await b.cl.destroy();
    await fs.rm(b.dir, { recursive: true, force: true });
  }
  return section({ vs, ms, version, trickle, ...before, loadAfter: os.loadavg()[0]! });
}

const msText = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(0)} ms`);
const pct = (x: number) => `${x.toFixed(2)} %`;
const ratio = (x: number, base: number) => (base > 0 ? `${(x / base).toFixed(2)}x` : 'n/a');

/** Over a condition's windows of one variant: CPU as % of one core, backends (median at the windows' ends), any lost. */
function summed(loads: readonly Load[]): { backend: number; process: number; backends: number; lost: number } {
  const secs = loads.reduce((a, l) => a + l.seconds, 0) || 1;
  return {
    backend: (loads.reduce((a, l) => a + l.backendCpuS, 0) / secs) * 100,
    process: (loads.reduce((a, l) => a + l.processCpuS, 0) / secs) * 100,
    backends: loads.length ? median(loads.map((l) => l.backends)) : 0,
    lost: loads.reduce((a, l) => a + l.lost, 0),
  };
}

function costRows(vs: Variant[]): string {
  return Object.values(CONDITIONS)
    .flatMap((c) => {
      const fig = (v: Variant) => {
        const lags = v.lags.get(c) ?? [];
        return { p50: lags.length ? median(lags) : 0, max: lags.length ? Math.max(...lags) : 0, ...summed(v.loads.get(c) ?? []) };
      };
      const base = fig(vs[0]!);
      return vs.map((v) => {
        const f = fig(v);
        const ratios = [ratio(f.p50, base.p50), ratio(f.max, base.max), ratio(f.backend, base.backend), ratio(f.process, base.process)];
        // CPU % of a core at one tick per interval, as time per tick: (% / 100) x interval
        const perTick = ((f.backend + f.process - base.backend - base.process) / 100) * DEFAULT_INTERVAL_MS * 1000;
        const added = v === vs[0] ? '-' : `${perTick >= 0 ? '+' : ''}${perTick.toFixed(0)} us`;
        const backends = `${f.backends}${f.lost ? ` (${f.lost} gone)` : ''}`;
        return `| ${c} | ${v.label} | ${msText(f.p50)} | ${msText(f.max)} | ${pct(f.backend)} | ${pct(f.process)} | ${backends} | ${ratios.join(' | ')} | ${added} |`;
      });
    })
    .join('\n');
}

function nthRows(ms: Mode[]): { rows: string; worst: number | null; missing: number } {
  let worst: number | null = 0;
  let missing = 0;
  const rows = ms
    .map((m) => {
      const got = (k: 'client' | 'clientStart' | 'server') => m.results.map((r) => r[k]).filter((x): x is number => x !== null);
      const stat = (xs: number[]) => (xs.length ? `**${msText(median(xs))}** / ${msText(Math.max(...xs))}` : 'n/a');
      const client = got('client');
      missing += m.results.length - client.length;
      if (worst !== null && client.length) worst = Math.max(worst, ...client);
      const refused = [...new Set(m.results.map((r) => r.refusedWith))].join(', ');
      return `| ${m.label} | ${m.results.length} | ${stat(client)} | ${stat(got('clientStart'))} | ${stat(got('server'))} | ${median(m.results.map((r) => r.probes))} | ${refused} | ${m.listed} |`;
    })
    .join('\n');
  return { rows, worst: missing ? null : worst, missing };
}

interface Run {
  vs: Variant[];
  ms: Mode[];
  version: string;
  trickle: Trickle;
  load: number;
  loadAfter: number;
  build: string;
}

function section(r: Run): string {
  const nth = nthRows(r.ms);
  const met = nth.worst !== null && nth.worst < TARGET_MS ? 'met' : 'MISSED';
  const outcomes = Object.entries(r.trickle.outcomes)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return `## lockout: guard's cost with the log reader on, and the Nth failed login to the reject in force

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, nproc ${os.availableParallelism()} (load average ${r.load.toFixed(2)} at the start, ${r.loadAfter.toFixed(2)} at the end);
${r.version.split(',')[0]} (the embedded binaries, one major); build ${r.build}; \`pgrevoke guard\` as a subprocess at the default
\`--interval\` (${DEFAULT_INTERVAL_MS} ms), one node. The server's collector writes csvlog and stderr (\`log_line_prefix\` with %h) at once. Method and
earlier runs: [bench/lockout-notes.md](bench/lockout-notes.md).

### The Nth failed login to the reject in force

Per mode a fresh guard and state directory (pg_hba.conf put back before), then ${NTH_TRIALS} trials, each its own role or address: ${AFTER} wrong
passwords from one 127.0.0.x source address, the last at a random phase of the guard's lockout pass, then logins from the same address
with the right password, one after another, until one is refused. "Client": the ${AFTER}th failed attempt's completion to the refused
attempt's completion (the reject was in force by the refused attempt's start: next column); "server log": the ${AFTER}th failure's
log time to the refusal's (csvlog, ms). Target: under ${TARGET_MS} ms (${met}${nth.missing ? `: ${nth.missing} trials not refused within 5 s` : `: at most ${msText(nth.worst)} by the client`}).

| mode | trials | client, median / max | to the refused attempt's start | server log | probes per trial (median) | refused with | \`pgrevoke lockouts\` after |
|---|---|---|---|---|---|---|---|
${nth.rows}

### What the log reader adds to the guard

Configurations measured alternately in the same run. Lag: ${LAG_TRIALS} trials per row, each with a freshly started guard and state directory, an attacker's
${SESSIONS} sessions of \`victim\` querying every ${ATTACK_INTERVAL_MS} ms and reconnecting, \`ALTER ROLE victim NOLOGIN\` at t0 at a random phase of the tick;
lag = the attacker's last successful query by the server's clock (its \`clock_timestamp()\`) - t0, as in the guard section (its refused
reconnects then lock \`victim\` out from 127.0.0.1 in the lockout rows: pg_hba.conf is put back after each trial). CPU: utime+stime
from /proc of the guard's Node process and of every backend serving it (found by the ports of its sockets; one started within a window
counts whole, one gone before the window's end is not counted), as % of one core, over ${WINDOW_MS / 1000} s windows (each a fresh guard and state directory: no log cursor to resume)
in A B B A order without the attacker (two per row); CPU added per tick = (backend + process CPU - the no-flags row's) x the ${DEFAULT_INTERVAL_MS} ms interval. Trickle: wrong passwords of ${TRICKLE_ROLES} real roles from ${TRICKLE_ADDRESSES.join(', ')}, round robin (no pair
failed ${AFTER} times in any guard's life: no lockout forms); ${r.trickle.rate().toFixed(1)} attempts/s achieved (${outcomes}; ${r.trickle.skipped} skipped with 10 in flight).
Guard exit codes on SIGTERM: ${[...exits].join(', ')}.

| condition | guard | lag p50 | lag max | backend CPU | process CPU | backends | lag p50 / no flags | lag max / no flags | backend / no flags | process / no flags | CPU added per tick |
|---|---|---|---|---|---|---|---|---|---|---|---|
${costRows(r.vs)}`;
}
