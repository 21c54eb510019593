// pgrevoke guard: how long a revoked role's sessions keep working, and what the guard costs the server.
// An attacker (20 sessions of `victim`, a query every 10 ms, reconnecting when cut) runs against an
// embedded cluster guarded by `pgrevoke guard`, in several configurations measured alternately in
// the same run: the default interval (what ships), other intervals of this build
// (BENCH_GUARD_INTERVALS=125,150; default the old 200 ms), and optionally another build
// (BENCH_GUARD_BASELINE=DIR: a checkout with a built bin/pgrevoke.js, e.g. the commit before a
// change, run with BENCH_GUARD_BASELINE_ARGS, default "--interval 200"). Each lag trial starts the
// trial's guard, lets it settle, sends `ALTER ROLE victim NOLOGIN` from an admin connection at t0;
// lag = the attacker's last successful query - t0; then stops the guard and restores LOGIN.
// Load: the CPU time of the guard's backend and of its Node process (/proc/<pid>/stat utime+stime,
// which the kernel keeps equal to the precise run time; the server is local), and the database's
// transactions per second, over windows taken in A B B A order per condition.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { DEFAULT_INTERVAL_MS } from '../src/guard/options.js';
import { BIN, cpuSeconds, machine, median, p, waitUntil } from './lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const SESSIONS = 20;
const ATTACK_INTERVAL_MS = 10;
const WINDOW_MS = Number(process.env.BENCH_GUARD_WINDOW_MS ?? 15_000);
const IDLE_BYSTANDERS = 500;
const TARGET = { p50: 100, max: 500, cpuPct: 1 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  if (!(await waitUntil(pred, ms, 10))) throw new Error(`bench guard: timed out waiting for ${what}`);
}

/** One way of running the guard: which build, which flags. */
interface Variant {
  label: string;
  bin: string;
  args: string[];
  /** The configuration that ships (this build, default settings). */
  shipped: boolean;
  lags: number[];
  kills: number[];
  loads: Map<string, Load[]>;
}

interface Load {
  sessions: number;
  seconds: number;
  backendCpuS: number;
  processCpuS: number;
  statements: number | null;
}

function variants(): Variant[] {
  const v = (label: string, bin: string, args: string[], shipped = false): Variant => ({
    label,
    bin,
    args,
    shipped,
    lags: [],
    kills: [],
    loads: new Map(),
  });
  // other intervals of this build: BENCH_GUARD_INTERVALS=125,150 (default: the old default, 200)
  const others = (process.env.BENCH_GUARD_INTERVALS ?? '200').split(',').filter(Boolean);
  const out = [
    v(`this build, default (${DEFAULT_INTERVAL_MS} ms)`, BIN, ['--interval', String(DEFAULT_INTERVAL_MS)], true),
    ...others.map((ms) => v(`this build, --interval ${ms}`, BIN, ['--interval', ms])),
  ];
  const base = process.env.BENCH_GUARD_BASELINE;
  if (base) {
    const args = (process.env.BENCH_GUARD_BASELINE_ARGS ?? '--interval 200').split(' ').filter(Boolean);
    let rev = 'unknown commit';
    try {
      rev = execFileSync('git', ['-C', base, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).trim();
    } catch {
      /* not a git checkout */
    }
    out.push(
      v(`${process.env.BENCH_GUARD_BASELINE_LABEL ?? `build at ${rev}`}, ${args.join(' ')}`, path.join(base, 'bin', 'pgrevoke.js'), args),
    );
  }
  return out;
}

interface Running {
  child: ChildProcess;
  stdout: () => string;
  backendPid: number;
  stop: () => Promise<number | null>;
}

/** Start one guard, wait until it is connected and has ticked for a while; find its backend. */
async function startGuard(v: Variant, cl: EmbeddedCluster, admin: pg.Client, auditLog: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [v.bin, 'guard', '-h', '127.0.0.1', '-p', String(cl.port), '-U', 'postgres', '--json', '--audit-log', auditLog, ...v.args],
    { env: { ...process.env, PGPASSWORD: cl.password, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await until(() => stderr.includes('connected as'), 30_000, `guard to connect: ${stderr}`);
  const backend = async () =>
    (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard'`)).rows;
  await until(async () => (await backend()).length === 1, 10_000, 'one guard backend');
  // past its first ticks (which learn every role) and its start-up
  await sleep(1000);
  return {
    child,
    stdout: () => stdout,
    backendPid: (await backend())[0]!.pid,
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      await until(async () => (await backend()).length === 0, 10_000, 'the guard backend to go');
      return code;
    },
  };
}

async function sessionCount(admin: pg.Client, where: string): Promise<number> {
  return (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${where}`)).rows[0]!.n;
}

/** One lag trial under variant v: NOLOGIN at t0, every victim session gone, LOGIN back. */
async function lagTrial(v: Variant, cl: EmbeddedCluster, admin: pg.Client, attacker: Attacker, auditLog: string): Promise<number | null> {
  const victims = () => sessionCount(admin, `usename = 'victim'`);
  await until(async () => (await victims()) >= SESSIONS, 30_000, 'the attacker at full strength');
  const g = await startGuard(v, cl, admin, auditLog);
  const before = attacker.stats.successes;
  await until(() => attacker.stats.successes > before + 100, 10_000, 'the attacker querying');
  // land the ALTER at a random phase of the guard's tick
  await sleep(Math.random() * 250);
  const t0 = performance.now();
  await admin.query('ALTER ROLE victim NOLOGIN');
  await until(async () => (await victims()) === 0, 10_000, 'every victim session to end');
  await sleep(300);
  v.lags.push(Math.max(0, (attacker.stats.lastSuccessAt ?? t0) - t0));
  v.kills.push(g.stdout().split('\n').filter(Boolean).length);
  const code = await g.stop();
  await admin.query('ALTER ROLE victim LOGIN');
  return code;
}

async function commits(admin: pg.Client): Promise<number> {
  const q = `SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()`;
  return Number((await admin.query<{ n: string }>(q)).rows[0]!.n);
}

/** One load window under variant v, recorded under `condition`. */
async function loadWindow(
  v: Variant,
  cl: EmbeddedCluster,
  admin: pg.Client,
  auditLog: string,
  condition: string,
  count: boolean,
): Promise<void> {
  const g = await startGuard(v, cl, admin, auditLog);
  const sessions = await sessionCount(admin, `backend_type = 'client backend'`);
  // the cumulative statistics are flushed at most once a second: let them settle first
  await sleep(1500);
  const c0 = count ? await commits(admin) : 0;
  const b0 = cpuSeconds(g.backendPid);
  const p0 = cpuSeconds(g.child.pid!);
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const b1 = cpuSeconds(g.backendPid);
  const p1 = cpuSeconds(g.child.pid!);
  const seconds = (performance.now() - t0) / 1000;
  let statements: number | null = null;
  if (count) {
    await sleep(1500);
    // minus this function's own two reads
    statements = ((await commits(admin)) - c0 - 2) / ((performance.now() - t0) / 1000);
  }
  await g.stop();
  const list = v.loads.get(condition) ?? [];
  list.push({ sessions, seconds, backendCpuS: b1 - b0, processCpuS: p1 - p0, statements });
  v.loads.set(condition, list);
}

/** Windows of every variant in A B B A order (each variant measured as early as late). */
async function loadRound(vs: Variant[], run: (v: Variant) => Promise<void>): Promise<void> {
  for (const v of [...vs, ...[...vs].reverse()]) await run(v);
}

const CONDITIONS = {
  attack: `attacker running (${SESSIONS} sessions querying every ${ATTACK_INTERVAL_MS} ms)`,
  quiet: 'quiet server',
  idle: `${IDLE_BYSTANDERS} idle bystander sessions`,
};

export async function benchGuard(): Promise<string> {
  const cl = new EmbeddedCluster({ password: 'bench' });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-bench-guard-'));
  const auditLog = path.join(dir, 'audit.log');
  await admin.query(`CREATE ROLE victim LOGIN PASSWORD 'v'`);
  await admin.query(`CREATE ROLE bystander LOGIN PASSWORD 'b'`);
  await admin.query(`CREATE TABLE loot AS SELECT g AS id FROM generate_series(1, 100) g`);
  await admin.query(`GRANT SELECT ON loot TO victim`);
  const attacker = new Attacker({
    host: '127.0.0.1',
    port: cl.port,
    user: 'victim',
    password: 'v',
    sessions: SESSIONS,
    intervalMs: ATTACK_INTERVAL_MS,
    query: 'SELECT count(*) FROM loot',
  });
  const vs = variants();
  const bystanders: pg.Client[] = [];
  const exits: (number | null)[] = [];
  const loadBefore = os.loadavg()[0]!;
  try {
    attacker.start();
    for (let i = 0; i < TRIALS; i++)
      for (const v of i % 2 ? [...vs].reverse() : vs) exits.push(await lagTrial(v, cl, admin, attacker, auditLog));
    await until(async () => (await sessionCount(admin, `usename = 'victim'`)) >= SESSIONS, 30_000, 'the attacker at full strength');
    for (const v of vs) await loadWindow(v, cl, admin, auditLog, CONDITIONS.attack, false);
    await attacker.stop();
    await loadRound(vs, (v) => loadWindow(v, cl, admin, auditLog, CONDITIONS.quiet, true));
    for (let i = 0; i < IDLE_BYSTANDERS; i++) {
      const c = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'bystander', password: 'b', database: 'postgres' });
      c.on('error', () => undefined);
      await c.connect();
      bystanders.push(c);
    }
    await loadRound(vs, (v) => loadWindow(v, cl, admin, auditLog, CONDITIONS.idle, true));
  } finally {
    await attacker.stop();
    await Promise.all(bystanders.map((c) => c.end().catch(() => undefined)));
    await admin.end().catch(() => undefined);
    await cl.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  }
  return section(vs, cl.major, exits, loadBefore, os.loadavg()[0]!);
}

const ms = (x: number) => `${x.toFixed(0)} ms`;
const pct = (x: number) => `${x.toFixed(2)} %`;

/** Over a condition's windows of one variant: CPU as % of one core, statements per second. */
function summed(loads: readonly Load[]): { sessions: number; backend: number; process: number; statements: number | null } {
  const secs = loads.reduce((a, l) => a + l.seconds, 0);
  const st = loads.every((l) => l.statements !== null) ? median(loads.map((l) => l.statements!)) : null;
  return {
    sessions: median(loads.map((l) => l.sessions)),
    backend: (loads.reduce((a, l) => a + l.backendCpuS, 0) / secs) * 100,
    process: (loads.reduce((a, l) => a + l.processCpuS, 0) / secs) * 100,
    statements: st,
  };
}

function section(vs: Variant[], major: number, exits: (number | null)[], loadBefore: number, loadAfter: number): string {
  const shipped = vs.find((v) => v.shipped)!;
  const lagRows = vs
    .map(
      (v) =>
        `| ${v.label} | **${ms(median(v.lags))}** | ${ms(p(v.lags, 0.9))} | **${ms(Math.max(...v.lags))}** | ${ms(Math.min(...v.lags))} | ${median(v.kills)} |`,
    )
    .join('\n');
  const loadRows = Object.values(CONDITIONS)
    .flatMap((c) =>
      vs.map((v) => {
        const s = summed(v.loads.get(c) ?? []);
        return `| ${c} | ${v.label} | ${s.sessions} | ${s.statements === null ? 'n/a' : s.statements.toFixed(1)} | ${pct(s.backend)} | ${pct(s.process)} |`;
      }),
    )
    .join('\n');
  const p50 = median(shipped.lags);
  const max = Math.max(...shipped.lags);
  const worst = Math.max(
    ...[CONDITIONS.quiet, CONDITIONS.idle].flatMap((c) => {
      const s = summed(shipped.loads.get(c) ?? []);
      return [s.backend, s.process];
    }),
  );
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return `## guard: revocation to last attacker query, and what guarding costs

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()} (load average ${loadBefore.toFixed(2)} at the start, ${loadAfter.toFixed(2)} at the end);
embedded PostgreSQL ${major}; \`pgrevoke guard\` as a subprocess, one node. **What ships: ${shipped.label}.** The other rows are the same
run's comparisons, measured alternately with it (lag trials interleaved, load windows in A B B A order). Attack: ${SESSIONS} sessions of
\`victim\` querying every ${ATTACK_INTERVAL_MS} ms, reconnecting at once when cut (their reconnects are refused after NOLOGIN). ${TRIALS} trials per row, each
with a freshly started guard: \`ALTER ROLE victim NOLOGIN\` sent from an admin connection at t0 (at a random phase of the guard's tick);
lag = the attacker's last successful query - t0; LOGIN restored between trials. Attempts and earlier runs: [bench/guard-notes.md](bench/guard-notes.md).

| guard | lag p50 | p90 | max | min | sessions killed per trial (median) |
|---|---|---|---|---|---|
${lagRows}

Targets for what ships: p50 < ${TARGET.p50} ms (${met(p50 < TARGET.p50)}), max < ${TARGET.max} ms (${met(max < TARGET.max)}); its backend and its process under ${TARGET.cpuPct} % of one
core each on a quiet server and with ${IDLE_BYSTANDERS} idle sessions (${met(worst < TARGET.cpuPct)}: at most ${pct(worst)}). Guard exit codes on SIGTERM: ${[...new Set(exits)].join(', ')}.

Guard's own load: CPU is utime+stime from /proc of the backend serving the guard (found by application_name) and of the guard's Node
process, as % of one core, over ${WINDOW_MS / 1000} s windows (two per row and condition but under attack, one). Statements/s is the database's xact_commit rate
(median of the windows) with nothing else running (the guard's tick is one statement, one transaction).

| condition | guard | client backends | statements/s | guard backend CPU | guard process CPU |
|---|---|---|---|---|---|
${loadRows}`;
}
