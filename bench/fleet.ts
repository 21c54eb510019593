// Cutoff over 1 node vs over 8 local clusters, alternating, on the same machine in one run. Each
// cluster has the role's sessions querying and reconnecting; the command's wall time (spawn to exit)
// and the time to containment on every cluster are compared. Target: 8 nodes <= 2x one node.
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { BIN, machine, median, runProcess, waitUntil } from './lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const CLUSTERS = 8;
const SESSIONS = 20;
const INTERVAL_MS = 20;

interface Node {
  cl: EmbeddedCluster;
  admin: pg.Client;
  attacker: Attacker;
}

interface Trial {
  wallMs: number;
  /** Last successful attacker query on any of the nodes cut, after the spawn. */
  containmentMs: number;
  escaped: number;
  exitCode: number | null;
}

async function ready(nodes: Node[]): Promise<void> {
  for (const n of nodes) await n.admin.query(`ALTER ROLE mallory LOGIN CONNECTION LIMIT -1`);
  // steady state: every attacker session of every node connected
  await waitUntil(async () => {
    for (const n of nodes) {
      const { rows } = await n.admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'mallory'`);
      if (rows[0]!.n < SESSIONS) return false;
    }
    return true;
  }, 30_000);
  await new Promise((r) => setTimeout(r, 300));
}

async function trial(nodes: Node[]): Promise<Trial> {
  await ready(nodes);
  const args = [BIN, 'cutoff', 'mallory', '--yes', '--json', '--playbook', 'contain-only', '-U', 'postgres'];
  for (const n of nodes) args.push('--target', `host=127.0.0.1 port=${n.cl.port} dbname=postgres`);
  const t0 = performance.now();
  const res = await runProcess(process.execPath, args, { ...process.env, PGPASSWORD: nodes[0]!.cl.password, NO_COLOR: '1' });
  const wallMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 1000));
  const before = nodes.map((n) => n.attacker.stats.successes);
  await new Promise((r) => setTimeout(r, 1000));
  const escaped = nodes.reduce((a, n, i) => a + n.attacker.stats.successes - before[i]!, 0);
  const last = Math.max(...nodes.map((n) => n.attacker.stats.lastSuccessAt ?? t0));
  return { wallMs, containmentMs: Math.max(0, last - t0), escaped, exitCode: res.code };
}

export async function benchFleet(): Promise<string> {
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < CLUSTERS; i++) {
      const cl = new EmbeddedCluster({ password: 'bench', settings: { max_connections: 100, shared_buffers: "'16MB'" } });
      await cl.start();
      const admin = new pg.Client({ connectionString: cl.url() });
      await admin.connect();
      await admin.query(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
      const attacker = new Attacker({
        host: '127.0.0.1',
        port: cl.port,
        user: 'mallory',
        password: 'm',
        sessions: SESSIONS,
        intervalMs: INTERVAL_MS,
        query: 'SELECT 1',
      });
      attacker.start();
      nodes.push({ cl, admin, attacker });
    }
    const one: Trial[] = [];
    const eight: Trial[] = [];
    for (let i = 0; i < TRIALS; i++) {
      one.push(await trial(nodes.slice(0, 1)));
      eight.push(await trial(nodes));
    }
    const row = (name: string, ts: Trial[]) =>
      `| ${name} | ${median(ts.map((t) => t.wallMs)).toFixed(0)} ms | ${Math.max(...ts.map((t) => t.wallMs)).toFixed(0)} ms | ${median(ts.map((t) => t.containmentMs)).toFixed(0)} ms | ${ts.reduce((a, t) => a + t.escaped, 0)} | ${ts.map((t) => t.exitCode).join(',')} |`;
    const ratio = median(eight.map((t) => t.wallMs)) / median(one.map((t) => t.wallMs));
    const cratio = median(eight.map((t) => t.containmentMs)) / median(one.map((t) => t.containmentMs));
    return `## fleet: cutoff over 1 node vs over ${CLUSTERS} clusters

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; ${CLUSTERS} embedded PostgreSQL ${nodes[0]!.cl.major} clusters on this one machine;
${TRIALS} alternating trials each. On every cluster ${SESSIONS} sessions of the role query every ${INTERVAL_MS} ms and reconnect when cut
(one attacker process for all). Command: \`pgrevoke cutoff mallory --yes --json --playbook contain-only --target ...\` (one --target, or ${CLUSTERS}).
Wall time = spawn to exit (plan, contain, settle and verify on every node, report). Containment = the last successful attacker
query on any cluster cut, after the spawn. Escaped = attacker queries that succeeded between 1 s and 2 s after the command returned.

| nodes | wall time (median) | wall time (max) | containment (median) | escaped queries | exit codes |
|---|---|---|---|---|---|
${row('1', one)}
${row(String(CLUSTERS), eight)}

Ratio ${CLUSTERS} nodes / 1 node: **${ratio.toFixed(2)}x** wall time, ${cratio.toFixed(2)}x containment (target <= 2x).
Nodes run concurrently (\`--concurrency\`, default 16); the 2 cores are shared by the ${CLUSTERS} servers, their ${CLUSTERS * SESSIONS} attacker sessions and pgrevoke.`;
  } finally {
    for (const n of nodes) {
      await n.attacker.stop();
      await n.admin.end().catch(() => undefined);
      await n.cl.destroy();
    }
  }
}
