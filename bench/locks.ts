// Containment when the attacker holds the locks pgrevoke needs, against the same cutoff on a quiet
// role, in one run with alternating trials. "own row": sessions of the target that changed their own
// password and keep the transaction open (reconnecting when cut); "pg_authid": a superuser target
// holding LOCK TABLE pg_authid IN EXCLUSIVE MODE the same way. Both also have 20 sessions querying
// every 10 ms. The bare psql runbook is run once against the own-row lock to show what it does.
import { existsSync } from 'node:fs';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { LockHolder } from '../src/demo/lock-holder.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { asPostgres, benchStateDir, BIN, machine, median, runProcess, waitUntil } from './lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 7);
const PSQL = ['/usr/bin/psql', '/usr/lib/postgresql/15/bin/psql'].find((p) => existsSync(p));
const RUNBOOK_CAP_MS = 10_000;

type Scenario = 'quiet' | 'own row' | 'pg_authid';

interface Trial {
  containmentMs: number;
  commandMs: number;
  attempts: number;
  exitCode: number | null;
  liveBackends: number;
}

const LOCK_SQL: Record<Scenario, ((role: string) => string) | null> = {
  quiet: null,
  'own row': (role) => `ALTER ROLE ${role} PASSWORD 'pw'`,
  pg_authid: () => 'LOCK TABLE pg_authid IN EXCLUSIVE MODE',
};

const state = benchStateDir();

async function trial(cl: EmbeddedCluster, admin: pg.Client, scenario: Scenario, n: number): Promise<Trial> {
  const role = `t_${scenario.replace(/\W/g, '_')}_${n}`;
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw' ${scenario === 'pg_authid' ? 'SUPERUSER' : ''}`);
  const who = { host: '127.0.0.1', port: cl.port, user: role, password: 'pw' };
  const attacker = new Attacker({ ...who, sessions: 20, intervalMs: 10 });
  attacker.start();
  const lock = LOCK_SQL[scenario];
  const holder = lock ? new LockHolder({ ...who, sql: lock(role) }) : null;
  try {
    await waitUntil(() => attacker.stats.successes > 100 && (holder?.holds ?? 1) > 0, 30_000);
    const t0 = performance.now();
    const res = await runProcess(
      process.execPath,
      [BIN, 'cutoff', role, '--yes', '--json', '--playbook', 'contain-only', ...asPostgres(cl.port)],
      { ...process.env, PGPASSWORD: cl.password, NO_COLOR: '1', PGREVOKE_STATE_DIR: state },
    );
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = $1::regrole`, [
      role,
    ]);
    const report = JSON.parse(res.stdout) as { contain: { attempts: number } | null };
    return {
      containmentMs: Math.max(0, (attacker.stats.lastSuccessAt ?? t0) - t0),
      commandMs: t1 - t0,
      attempts: report.contain?.attempts ?? 0,
      exitCode: res.code,
      liveBackends: rows[0]!.n,
    };
  } finally {
    await holder?.stop();
    await attacker.stop();
  }
}

/** The psql runbook against the own-row lock: it has no lock_timeout, so it waits; killed at the cap. */
async function runbookUnderLock(cl: EmbeddedCluster, admin: pg.Client): Promise<string> {
  if (!PSQL) return 'not measured: no psql on this machine';
  await admin.query(`CREATE ROLE t_runbook LOGIN PASSWORD 'pw'`);
  const holder = new LockHolder({
    host: '127.0.0.1',
    port: cl.port,
    user: 't_runbook',
    password: 'pw',
    sql: `ALTER ROLE t_runbook PASSWORD 'pw'`,
  });
  try {
    await waitUntil(() => holder.holds > 0, 30_000);
    const sql = `ALTER ROLE t_runbook NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 't_runbook';`;
    const t0 = performance.now();
    const res = await runProcess(
      'timeout',
      [String(RUNBOOK_CAP_MS / 1000), PSQL, '-X', '-q', ...asPostgres(cl.port), '-d', 'postgres', '-c', sql],
      {
        ...process.env,
        PGPASSWORD: cl.password,
      },
    );
    const ms = performance.now() - t0;
    const { rows } = await admin.query<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 't_runbook'`);
    return res.code === 124
      ? `still waiting on the lock after ${(ms / 1000).toFixed(1)} s (killed by timeout), role still LOGIN: ${rows[0]!.l}`
      : `returned after ${ms.toFixed(0)} ms with exit ${res.code}, role still LOGIN: ${rows[0]!.l}`;
  } finally {
    await holder.stop();
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 't_runbook'`);
  }
}

function row(name: string, ts: Trial[], quiet: number): string {
  const c = median(ts.map((t) => t.containmentMs));
  return `| ${name} | ${c.toFixed(0)} ms | ${Math.max(...ts.map((t) => t.containmentMs)).toFixed(0)} ms | ${median(ts.map((t) => t.commandMs)).toFixed(0)} ms | ${(c / quiet).toFixed(2)}x (+${(c - quiet).toFixed(0)} ms) | ${median(ts.map((t) => t.attempts))} | ${ts.reduce((a, t) => a + t.liveBackends, 0)} | ${ts.map((t) => t.exitCode).join(',')} |`;
}

export async function benchLocks(): Promise<string> {
  const cl = new EmbeddedCluster({ password: 'bench', settings: { max_connections: 300 } });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  const scenarios: Scenario[] = ['quiet', 'own row', 'pg_authid'];
  const trials: Record<Scenario, Trial[]> = { quiet: [], 'own row': [], pg_authid: [] };
  let runbook: string;
  try {
    for (let i = 0; i < TRIALS; i++) for (const s of scenarios) trials[s].push(await trial(cl, admin, s, i));
    runbook = await runbookUnderLock(cl, admin);
  } finally {
    await admin.end().catch(() => undefined);
    await cl.destroy();
  }
  const quiet = median(trials.quiet.map((t) => t.containmentMs));
  return `## locks: containment when the attacker holds the locks cutoff needs

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; embedded PostgreSQL ${cl.major}; ${TRIALS} trials of each scenario, alternating.
Each trial: a fresh role, 20 of its sessions querying every 10 ms and reconnecting when cut, and (but for "quiet") one more session
of it holding a lock in an open transaction, reconnecting and taking it again when cut. Command: \`pgrevoke cutoff --playbook contain-only --yes\`.
Containment = last successful attacker query minus the spawn. Target: within about a second of the quiet case.

| attack | containment (median) | containment (max) | command wall time (median) | vs quiet | containment attempts (median) | live backends after | exit codes |
|---|---|---|---|---|---|---|---|
${row('quiet (no lock)', trials.quiet, quiet)}
${row('own row: `ALTER ROLE self PASSWORD` in an open transaction', trials['own row'], quiet)}
${row('superuser: `LOCK TABLE pg_authid IN EXCLUSIVE MODE`', trials.pg_authid, quiet)}

The bare psql runbook (\`ALTER ROLE ... NOLOGIN; SELECT pg_terminate_backend(...)\`) against the own-row lock: ${runbook}.`;
}
