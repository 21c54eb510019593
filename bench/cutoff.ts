// Time to containment, from the attacker's side: the last successful attacker query after the
// command starts. 300 sessions query every 20 ms and reconnect when cut. pgrevoke cutoff and the
// bare psql runbook (one psql call: NOLOGIN + pg_terminate_backend over pg_stat_activity) take
// turns on the same cluster and the same attack, in one run.
import { existsSync } from 'node:fs';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { asPostgres, benchStateDir, BIN, machine, median, runProcess, waitUntil } from './lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const SESSIONS = 300;
const INTERVAL_MS = 20;
const PSQL = ['/usr/bin/psql', '/usr/lib/postgresql/15/bin/psql'].find((p) => existsSync(p));

interface Trial {
  /** PGREVOKE_TRACE milestones (ms since the process started), pgrevoke trials only. */
  trace: Record<string, number>;
  containmentMs: number;
  commandMs: number;
  escapedQueries: number;
  liveBackends: number;
  exitCode: number | null;
}

async function trial(
  cl: EmbeddedCluster,
  admin: pg.Client,
  attacker: Attacker,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Trial> {
  await admin.query(`ALTER ROLE mallory LOGIN CONNECTION LIMIT -1`);
  // steady state: every attacker session connected and querying
  await waitUntil(async () => {
    const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'mallory'`);
    return rows[0]!.n >= SESSIONS;
  }, 30_000);
  await new Promise((r) => setTimeout(r, 500));
  const t0 = performance.now();
  const res = await runProcess(cmd, args, env);
  const t1 = performance.now();
  const before = attacker.stats.successes;
  // anything that still succeeds a second after the command returned has escaped
  await new Promise((r) => setTimeout(r, 1000));
  const settleCount = attacker.stats.successes;
  await new Promise((r) => setTimeout(r, 1000));
  const escapedQueries = attacker.stats.successes - settleCount;
  const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = 'mallory'::regrole`);
  void before;
  const trace: Record<string, number> = {};
  for (const m of res.stderr.matchAll(/^trace ([\d.]+) ms (.+)$/gm)) trace[m[2]!] = Number(m[1]);
  return {
    trace,
    containmentMs: Math.max(0, (attacker.stats.lastSuccessAt ?? t0) - t0),
    commandMs: t1 - t0,
    escapedQueries,
    liveBackends: rows[0]!.n,
    exitCode: res.code,
  };
}

function summary(name: string, ts: Trial[]): string {
  const c = ts.map((t) => t.containmentMs);
  const cmd = ts.map((t) => t.commandMs);
  return `| ${name} | ${median(c).toFixed(0)} ms | ${Math.max(...c).toFixed(0)} ms | ${median(cmd).toFixed(0)} ms | ${ts.reduce((a, t) => a + t.escapedQueries, 0)} | ${ts.reduce((a, t) => a + t.liveBackends, 0)} | ${ts.map((t) => t.exitCode).join(',')} |`;
}

export async function benchCutoff(): Promise<string> {
  const cl = new EmbeddedCluster({ password: 'bench', settings: { max_connections: 800 } });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  await admin.query(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
  await admin.query(`CREATE TABLE loot AS SELECT g AS id FROM generate_series(1, 100) g`);
  await admin.query(`GRANT SELECT ON loot TO mallory`);
  const attacker = new Attacker({
    host: '127.0.0.1',
    port: cl.port,
    user: 'mallory',
    password: 'm',
    sessions: SESSIONS,
    intervalMs: INTERVAL_MS,
    query: 'SELECT count(*) FROM loot',
  });
  attacker.start();
  const env = { ...process.env, PGPASSWORD: cl.password, NO_COLOR: '1', PGREVOKE_STATE_DIR: benchStateDir() };
  const traced = { ...env, PGREVOKE_TRACE: '1' };
  const runbookSql = `ALTER ROLE mallory NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'mallory';`;
  const runbook: Trial[] = [];
  const tool: Trial[] = [];
  // the floor for any Node CLI: a bare `node -e 0` started and ended under the same attack
  const nodeFloor: number[] = [];
  try {
    for (let i = 0; i < TRIALS; i++) {
      if (PSQL)
        runbook.push(await trial(cl, admin, attacker, PSQL, ['-X', '-q', ...asPostgres(cl.port), '-d', 'postgres', '-c', runbookSql], env));
      tool.push(
        await trial(
          cl,
          admin,
          attacker,
          process.execPath,
          [BIN, 'cutoff', 'mallory', '--yes', '--json', '--playbook', 'contain-only', ...asPostgres(cl.port)],
          traced,
        ),
      );
      const t0 = performance.now();
      await runProcess(process.execPath, ['-e', '0'], env);
      nodeFloor.push(performance.now() - t0);
    }
  } finally {
    await attacker.stop();
    await admin.end().catch(() => undefined);
    await cl.destroy();
  }
  const milestone = (k: string) => {
    const xs = tool.map((t) => t.trace[k]).filter((x): x is number => x !== undefined);
    return xs.length ? `${median(xs).toFixed(0)} ms` : 'n/a';
  };
  const recordMs = () => {
    const xs = tool.flatMap((t) =>
      t.trace['record written'] !== undefined && t.trace['record start'] !== undefined
        ? [t.trace['record written']! - t.trace['record start']!]
        : [],
    );
    return xs.length ? `${median(xs).toFixed(1)} ms (${xs.map((x) => x.toFixed(1)).join(', ')})` : 'n/a';
  };
  const ratio = PSQL ? (median(tool.map((t) => t.containmentMs)) / median(runbook.map((t) => t.containmentMs))).toFixed(2) : 'n/a';
  return `## cutoff: time to containment under a reconnecting attack

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; embedded PostgreSQL ${cl.major}; ${TRIALS} alternating trials each.
Attack: ${SESSIONS} sessions of the target querying every ${INTERVAL_MS} ms and reconnecting at once when cut (one Node process on the same machine).
Containment time = last successful attacker query minus the moment the command was spawned. "Escaped" = attacker queries that still
succeeded between 1 s and 2 s after the command returned, and backends of the role alive after that.

| command | containment (median) | containment (max) | command wall time (median) | escaped queries | live backends after | exit codes |
|---|---|---|---|---|---|---|
${PSQL ? summary('psql runbook: `ALTER ROLE ... NOLOGIN; SELECT pg_terminate_backend(pid) ... WHERE usename = ...`', runbook) : '| psql runbook | not measured: no psql on this machine | | | | | |'}
${summary('`pgrevoke cutoff --playbook contain-only --yes`', tool)}

Ratio pgrevoke / runbook (median containment): **${ratio}x** (target <= 1.0x, zero escaped sessions).

The floor for any Node.js CLI under the same attack: a bare \`node -e 0\` (start, nothing, exit) took
${median(nodeFloor).toFixed(0)} ms median (${nodeFloor.map((x) => x.toFixed(0)).join(', ')} ms)${PSQL ? `, that is ${(median(nodeFloor) / median(runbook.map((t) => t.containmentMs))).toFixed(2)}x the runbook's whole containment time` : ''}.

Where pgrevoke's time goes, from \`PGREVOKE_TRACE=1\` in the same trials (medians, ms since its process started; the
process starts some ms after the spawn): connected and playbook loaded ${milestone('connected, playbook loaded')},
containment statement sent ${milestone('contain start')}, returned ${milestone('contain end')}, settled ${milestone('settle end')}.
The write-ahead record (created, its first line fsync'd, the directory fsync'd) took ${recordMs()} median on that path.
Most of the gap to psql is Node's start-up and module loading on two cores that the attack saturates (psql is a small C program).`;
}
