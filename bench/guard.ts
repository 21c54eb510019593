// pgrevoke guard: how long a revoked role's sessions keep working, and what the guard costs the server.
// An attacker (20 sessions of `victim`, a query every 10 ms, reconnecting when cut) runs against an
// embedded cluster guarded by `pgrevoke guard` with its default settings (200 ms interval). Each
// trial: `ALTER ROLE victim NOLOGIN` from an admin connection at t0; lag = the attacker's last
// successful query - t0. Then LOGIN is restored and the attacker is let back to 20 sessions.
// Load: the CPU time of the guard's own backend (/proc/<pid>/stat utime+stime; the server is local)
// and its statements per second, over 10 s windows.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { BIN, machine, median, p, waitUntil } from './lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const SESSIONS = 20;
const ATTACK_INTERVAL_MS = 10;
const WINDOW_MS = Number(process.env.BENCH_GUARD_WINDOW_MS ?? 10_000);
const IDLE_BYSTANDERS = 500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  if (!(await waitUntil(pred, ms, 10))) throw new Error(`bench guard: timed out waiting for ${what}`);
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may contain spaces: count fields after its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface Load {
  label: string;
  sessions: number;
  backendCpuPct: number;
  guardProcessCpuPct: number;
  statementsPerSecond: number | null;
}

async function measureLoad(admin: pg.Client, backendPid: number, guardPid: number, label: string, countStatements: boolean): Promise<Load> {
  const hz = clockTicks();
  const commits = async () =>
    Number(
      (await admin.query<{ n: string }>(`SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()`)).rows[0]!
        .n,
    );
  const sessions = (
    await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'`)
  ).rows[0]!.n;
  // the cumulative statistics are flushed at most once a second: let them settle first
  await sleep(1500);
  const c0 = countStatements ? await commits() : 0;
  const b0 = cpuTicks(backendPid);
  const g0 = cpuTicks(guardPid);
  const t0 = performance.now();
  await sleep(WINDOW_MS);
  const b1 = cpuTicks(backendPid);
  const g1 = cpuTicks(guardPid);
  const secs = (performance.now() - t0) / 1000;
  let statementsPerSecond: number | null = null;
  if (countStatements) {
    await sleep(1500);
    // minus this function's own two reads
    statementsPerSecond = ((await commits()) - c0 - 2) / ((performance.now() - t0) / 1000);
  }
  return {
    label,
    sessions,
    backendCpuPct: ((b1 - b0) / hz / secs) * 100,
    guardProcessCpuPct: ((g1 - g0) / hz / secs) * 100,
    statementsPerSecond,
  };
}

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

  const guard = spawn(
    process.execPath,
    [BIN, 'guard', '-h', '127.0.0.1', '-p', String(cl.port), '-U', 'postgres', '--json', '--audit-log', auditLog],
    {
      env: { ...process.env, PGPASSWORD: cl.password, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  guard.stdout.on('data', (d) => (stdout += d));
  guard.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => guard.on('close', resolve));

  const attacker = new Attacker({
    host: '127.0.0.1',
    port: cl.port,
    user: 'victim',
    password: 'v',
    sessions: SESSIONS,
    intervalMs: ATTACK_INTERVAL_MS,
    query: 'SELECT count(*) FROM loot',
  });
  const victimSessions = async () =>
    (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'victim'`)).rows[0]!.n;

  const lags: number[] = [];
  const killsPerTrial: number[] = [];
  const loads: Load[] = [];
  const bystanders: pg.Client[] = [];
  let guardExit: number | null;
  try {
    await until(() => stderr.includes('connected as'), 30_000, `guard to connect: ${stderr}`);
    attacker.start();
    for (let i = 0; i < TRIALS; i++) {
      await until(async () => (await victimSessions()) >= SESSIONS, 30_000, 'the attacker at full strength');
      const before = attacker.stats.successes;
      await until(() => attacker.stats.successes > before + 100, 10_000, 'the attacker querying');
      // land the ALTER at a random phase of the guard's 200 ms tick
      await sleep(Math.random() * 250);
      const killsBefore = stdout.split('\n').filter(Boolean).length;
      const t0 = performance.now();
      await admin.query('ALTER ROLE victim NOLOGIN');
      await until(async () => (await victimSessions()) === 0, 10_000, 'every victim session to end');
      await sleep(300);
      lags.push(Math.max(0, (attacker.stats.lastSuccessAt ?? t0) - t0));
      killsPerTrial.push(stdout.split('\n').filter(Boolean).length - killsBefore);
      await admin.query('ALTER ROLE victim LOGIN');
    }

    const backendPid = (
      await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND usename = 'postgres'`,
      )
    ).rows[0]!.pid;
    await until(async () => (await victimSessions()) >= SESSIONS, 30_000, 'the attacker at full strength');
    loads.push(
      await measureLoad(
        admin,
        backendPid,
        guard.pid!,
        `attacker running (${SESSIONS} sessions querying every ${ATTACK_INTERVAL_MS} ms)`,
        false,
      ),
    );
    await attacker.stop();
    loads.push(await measureLoad(admin, backendPid, guard.pid!, 'quiet server', true));
    for (let i = 0; i < IDLE_BYSTANDERS; i++) {
      const c = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'bystander', password: 'b', database: 'postgres' });
      c.on('error', () => undefined);
      await c.connect();
      bystanders.push(c);
    }
    loads.push(await measureLoad(admin, backendPid, guard.pid!, `${IDLE_BYSTANDERS} idle bystander sessions`, true));
  } finally {
    await attacker.stop();
    await Promise.all(bystanders.map((c) => c.end().catch(() => undefined)));
    guard.kill('SIGTERM');
    guardExit = await exited;
    await admin.end().catch(() => undefined);
    await cl.destroy();
  }
  const auditLines = (await fs.readFile(auditLog, 'utf8')).split('\n').filter(Boolean).length;
  await fs.rm(dir, { recursive: true, force: true });

  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const pct = (x: number) => `${x.toFixed(2)} %`;
  const p50 = median(lags);
  const max = Math.max(...lags);
  const rows = loads
    .map(
      (l) =>
        `| ${l.label} | ${l.sessions} | ${l.statementsPerSecond === null ? 'n/a' : l.statementsPerSecond.toFixed(1)} | ${pct(l.backendCpuPct)} | ${pct(l.guardProcessCpuPct)} |`,
    )
    .join('\n');
  return `## guard: revocation to last attacker query, and what guarding costs

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; embedded PostgreSQL ${cl.major}; \`pgrevoke guard\` with default settings
(one node, 200 ms interval), as a subprocess. Attack: ${SESSIONS} sessions of \`victim\` querying every ${ATTACK_INTERVAL_MS} ms, reconnecting at
once when cut (their reconnects are refused after NOLOGIN). ${TRIALS} trials: \`ALTER ROLE victim NOLOGIN\` sent from an admin connection at t0
(at a random phase of the guard's tick); lag = the attacker's last successful query - t0; LOGIN restored between trials.

| lag | p50 | p90 | max | min | sessions killed per trial | audit lines |
|---|---|---|---|---|---|---|
| NOLOGIN -> last attacker query | **${ms(p50)}** | ${ms(p(lags, 0.9))} | **${ms(max)}** | ${ms(Math.min(...lags))} | ${median(killsPerTrial)} (median) | ${auditLines} |

Targets: max < 1000 ms (${max < 1000 ? 'met' : 'MISSED'}), p50 < 300 ms (${p50 < 300 ? 'met' : 'MISSED'}). Guard exit code on SIGTERM: ${guardExit}.

Guard's own load, ${WINDOW_MS / 1000} s windows. CPU is utime+stime from /proc of the backend serving the guard (found by
application_name) and of the guard's Node process, as % of one core. Statements/s is the database's xact_commit rate with
nothing else running (the guard's tick is one statement, one transaction).

| condition | client backends | guard statements/s | guard backend CPU | guard process CPU |
|---|---|---|---|---|
${rows}`;
}
