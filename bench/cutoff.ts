// Time to containment, from the attacker's side: the last successful attacker query after the
// command starts. 300 sessions query every 20 ms and reconnect when cut. pgrevoke cutoff (the
// default playbook) and the bare psql runbook (one psql call: NOLOGIN + pg_terminate_backend over
// pg_stat_activity) take turns on the same cluster and the same attack, in one run, in two
// placements (bench/placement.ts): split (server and attacker on CPU 0, the command on CPU 1) and
// shared (no pinning). A bare `node -e 0` is timed the same way in each. BENCH_CUTOFF_BASELINE=DIR (a
// checkout with a built bin/pgrevoke.js, e.g. the commit before a change) adds that build's cutoff to
// every round, right after this one's, so the two compare within one run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { asPostgres, benchStateDir, BIN, machine, median, ROOT, runProcess, waitUntil } from './lib.js';
import { affinity, onResponderCpu, place, PLACEMENTS, splitUnavailable, type Placement } from './placement.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 7);
const SESSIONS = 300;
const INTERVAL_MS = 20;
const PSQL = ['/usr/bin/psql', '/usr/lib/postgresql/15/bin/psql'].find((p) => existsSync(p));
const RUNBOOK_SQL = `ALTER ROLE mallory NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'mallory';`;

// clock_timestamp() is when the query ran; the same host's clock as the bench's Date.now()
const ATTACK_QUERY = `SELECT count(*), (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at FROM loot`;

type Kind = 'runbook' | 'pgrevoke' | 'node' | 'baseline';

const BASELINE = process.env.BENCH_CUTOFF_BASELINE ?? null;

/** The baseline build's commit, as its row names it. */
function baselineRev(): string {
  if (!BASELINE) return '';
  try {
    return execFileSync('git', ['-C', BASELINE, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).trim();
  } catch {
    return existsSync(path.join(BASELINE, '.rev')) ? readFileSync(path.join(BASELINE, '.rev'), 'utf8').trim() : 'unknown commit';
  }
}

interface Trial {
  /** PGREVOKE_TRACE milestones (ms since the process started), pgrevoke trials only. */
  trace: Record<string, number>;
  /** Last successful attacker query, as the attacker saw it, minus the spawn. */
  containmentMs: number;
  /** The same query's clock_timestamp() on the server minus the spawn: not delayed by a starved attacker. */
  serverMs: number;
  commandMs: number;
  escapedQueries: number;
  liveBackends: number;
  exitCode: number | null;
  /** pgrevoke: the hba_reject step's status in its report. */
  hba: string | null;
  /** `taskset -p` of one backend of the target, read before the command ran. */
  backendMask: string;
}

interface Bench {
  cl: EmbeddedCluster;
  admin: pg.Client;
  attacker: Attacker;
  /** pg_hba.conf as initdb wrote it: put back before every trial. */
  hba: string;
  env: NodeJS.ProcessEnv;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function targetBackends(admin: pg.Client): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE usename = 'mallory'`);
  return rows.map((r) => r.pid);
}

/** The placement, the original pg_hba.conf and a reload, LOGIN back, then every attacker session connected and querying. */
async function reset(b: Bench, placement: Placement): Promise<string> {
  place(b.cl, placement);
  writeFileSync(b.cl.hbaFile, b.hba);
  await b.admin.query(`SELECT pg_reload_conf()`);
  await b.admin.query(`ALTER ROLE mallory LOGIN CONNECTION LIMIT -1`);
  await waitUntil(async () => (await targetBackends(b.admin)).length >= SESSIONS, 30_000);
  await sleep(500);
  return affinity((await targetBackends(b.admin))[0]!);
}

function command(b: Bench, kind: Kind): [string, string[], NodeJS.ProcessEnv] {
  if (kind === 'runbook') return [PSQL!, ['-X', '-q', ...asPostgres(b.cl.port), '-d', 'postgres', '-c', RUNBOOK_SQL], b.env];
  if (kind === 'node') return [process.execPath, ['-e', '0'], b.env];
  const bin = kind === 'baseline' ? path.join(BASELINE!, 'bin', 'pgrevoke.js') : BIN;
  const args = [bin, 'cutoff', 'mallory', '--yes', '--json', '--hba-file', b.cl.hbaFile, ...asPostgres(b.cl.port)];
  return [process.execPath, args, { ...b.env, PGREVOKE_TRACE: '1' }];
}

function hbaStatus(stdout: string): string | null {
  try {
    const report = JSON.parse(stdout) as { steps?: { action: string; status: string }[] };
    return report.steps?.find((s) => s.action === 'hba_reject')?.status ?? 'absent';
  } catch {
    return 'no report';
  }
}

/** Anything that still succeeds a second after the command returned has escaped; then the role's backends left. */
async function aftermath(b: Bench): Promise<{ escapedQueries: number; liveBackends: number }> {
  await sleep(1000);
  const settled = b.attacker.stats.successes;
  await sleep(1000);
  return { escapedQueries: b.attacker.stats.successes - settled, liveBackends: (await targetBackends(b.admin)).length };
}

async function trial(b: Bench, kind: Kind, placement: Placement): Promise<Trial> {
  const backendMask = await reset(b, placement);
  const [cmd, args, env] = command(b, kind);
  const t0 = performance.now();
  const epoch0 = Date.now();
  const res = await runProcess(...onResponderCpu(placement, cmd, args), env);
  const commandMs = performance.now() - t0;
  const containmentMs = Math.max(0, (b.attacker.stats.lastSuccessAt ?? t0) - t0);
  if (b.attacker.stats.lastServerAt === null) throw new Error('bench cutoff: the attack query returned no server stamp');
  const serverMs = Math.max(0, b.attacker.stats.lastServerAt - epoch0);
  const after = kind === 'node' ? { escapedQueries: 0, liveBackends: 0 } : await aftermath(b);
  const trace: Record<string, number> = {};
  for (const m of res.stderr.matchAll(/^trace ([\d.]+) ms (.+)$/gm)) trace[m[2]!] = Number(m[1]);
  const hba = kind === 'pgrevoke' || kind === 'baseline' ? hbaStatus(res.stdout) : null;
  return { trace, containmentMs, serverMs, commandMs, ...after, exitCode: res.code, hba, backendMask };
}

async function setUp(): Promise<Bench> {
  const cl = new EmbeddedCluster({ password: 'bench', settings: { max_connections: 800 } });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  await admin.query(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
  await admin.query(`CREATE TABLE loot AS SELECT g AS id FROM generate_series(1, 100) g`);
  await admin.query(`GRANT SELECT ON loot TO mallory`);
  // pinned before the attack starts: every backend forked from now on inherits the postmaster's CPUs
  place(cl, PLACEMENTS[0]!);
  const attacker = new Attacker({
    ...{ host: '127.0.0.1', port: cl.port, user: 'mallory', password: 'm' },
    ...{ sessions: SESSIONS, intervalMs: INTERVAL_MS, query: ATTACK_QUERY, serverStampColumn: 'at' },
  });
  attacker.start();
  const env = { ...process.env, PGPASSWORD: cl.password, NO_COLOR: '1', PGREVOKE_STATE_DIR: benchStateDir() };
  return { cl, admin, attacker, hba: readFileSync(cl.hbaFile, 'utf8'), env };
}

type Results = Record<Placement, Record<Kind, Trial[]>>;

/** Round i: each placement in turn (the first one alternating), in each node -e 0, the runbook, pgrevoke (and the baseline). */
async function runTrials(b: Bench): Promise<Results> {
  // node first: a placement changes while the role's sessions are cut, so only the server's own processes move
  const kinds: Kind[] = [...(PSQL ? ['node', 'runbook', 'pgrevoke'] : ['node', 'pgrevoke']), ...(BASELINE ? ['baseline'] : [])] as Kind[];
  const out = Object.fromEntries(PLACEMENTS.map((pl) => [pl, { runbook: [], pgrevoke: [], node: [], baseline: [] }])) as unknown as Results;
  for (let i = 0; i < TRIALS; i++) {
    const order = i % 2 ? [...PLACEMENTS].reverse() : PLACEMENTS;
    // this build and the baseline take turns going first
    const round = BASELINE && i % 2 ? [...kinds.slice(0, -2), 'baseline', 'pgrevoke'] : kinds;
    for (const placement of order)
      for (const kind of round as Kind[]) {
        const t = await trial(b, kind, placement);
        console.error(
          `${i} ${placement} ${kind}: containment ${ms(t.serverMs)} (attacker's clock ${ms(t.containmentMs)}), wall ${ms(t.commandMs)}`,
        );
        out[placement][kind].push(t);
      }
  }
  return out;
}

export async function benchCutoff(): Promise<string> {
  // before anything starts: during the run the bench's own 300 sessions and their reconnects raise it
  const load = os.loadavg()[0]!;
  const b = await setUp();
  try {
    return render(await runTrials(b), b.cl.major, load);
  } finally {
    await b.attacker.stop();
    await b.admin.end().catch(() => undefined);
    await b.cl.destroy();
  }
}

// ---- the section ----

const ms = (x: number) => `${x.toFixed(0)} ms`;
const med = (ts: Trial[], f: (t: Trial) => number) => median(ts.map(f));
const sum = (ts: Trial[], f: (t: Trial) => number) => ts.reduce((a, t) => a + f(t), 0);

function row(placement: Placement, name: string, ts: Trial[]): string {
  if (!ts.length) return `| ${placement} | ${name} | not measured${PSQL ? '' : ': no psql on this machine'} | | | | | | |`;
  const c = ts.map((t) => t.serverMs);
  const cells = [
    ms(median(c)),
    c.map((x) => x.toFixed(0)).join(', '),
    ms(med(ts, (t) => t.containmentMs)),
    ms(med(ts, (t) => t.commandMs)),
  ];
  const counts = [sum(ts, (t) => t.escapedQueries), sum(ts, (t) => t.liveBackends), ts.map((t) => t.exitCode).join(',')];
  return `| ${placement} | ${name} | ${[...cells, ...counts].join(' | ')} |`;
}

const ratio = (r: Results[Placement], f: (t: Trial) => number, kind: Kind = 'pgrevoke') => med(r[kind], f) / med(r.runbook, f);

function ratioLine(placement: Placement, r: Results[Placement], target: string): string {
  const rb = r.runbook.length ? med(r.runbook, (t) => t.serverMs) : NaN;
  const floor = r.node.map((t) => t.commandMs);
  const ratios = PSQL
    ? `**${ratio(r, (t) => t.serverMs).toFixed(2)}x** (target ${target}); by the attacker's clock ${ratio(r, (t) => t.containmentMs).toFixed(2)}x`
    : 'n/a';
  const floorVsRunbook = PSQL ? `, ${(median(floor) / rb).toFixed(2)}x the runbook's containment` : '';
  const base = PSQL && r.baseline.length ? `; the baseline (${baselineRev()}) ${ratio(r, (t) => t.serverMs, 'baseline').toFixed(2)}x` : '';
  return `- **${placement}**: pgrevoke / runbook ${ratios}${base}; \`node -e 0\` ${ms(median(floor))} median (${floor.map((x) => x.toFixed(0)).join(', ')} ms)${floorVsRunbook}.`;
}

/** Every PGREVOKE_TRACE milestone, in the order pgrevoke reached them: the median per placement. */
function traceTable(r: Results): string {
  const kinds: Kind[] = BASELINE ? ['pgrevoke', 'baseline'] : ['pgrevoke'];
  const labels = [...new Set(kinds.flatMap((k) => PLACEMENTS.flatMap((pl) => r[pl][k].flatMap((t) => Object.keys(t.trace)))))];
  const at = (ts: Trial[], k: string) => {
    const xs = ts.map((t) => t.trace[k]).filter((x): x is number => x !== undefined);
    return xs.length ? ms(median(xs)) : 'n/a';
  };
  const cols = PLACEMENTS.flatMap((pl) => kinds.map((k) => ({ pl, k })));
  const name = (c: { pl: Placement; k: Kind }) => (BASELINE ? `${c.pl}, ${c.k === 'baseline' ? baselineRev() : 'this build'}` : c.pl);
  const head = `| milestone | ${cols.map(name).join(' | ')} |\n|---|${cols.map(() => '---|').join('')}`;
  return [head, ...labels.map((l) => `| ${l} | ${cols.map((c) => at(r[c.pl][c.k], l)).join(' | ')} |`)].join('\n');
}

/** Spans on the path to the containment statement: per trial, then the median (not a difference of the medians above). */
const SPANS: [string, string, string][] = [
  ['plan state (session open to plan built)', 'session open', 'plan built'],
  ['plan built to contain start', 'plan built', 'contain start'],
  ['session open to contain start', 'session open', 'contain start'],
];

function spanTable(r: Results): string {
  const kinds: Kind[] = BASELINE ? ['pgrevoke', 'baseline'] : ['pgrevoke'];
  const cols = PLACEMENTS.flatMap((pl) => kinds.map((k) => ({ pl, k })));
  const name = (c: { pl: Placement; k: Kind }) => (BASELINE ? `${c.pl}, ${c.k === 'baseline' ? baselineRev() : 'this build'}` : c.pl);
  const span = (ts: Trial[], from: string, to: string) => {
    const xs = ts.flatMap((t) => (t.trace[from] !== undefined && t.trace[to] !== undefined ? [t.trace[to]! - t.trace[from]!] : []));
    return xs.length ? `${ms(median(xs))} (${xs.map((x) => x.toFixed(0)).join(', ')})` : 'n/a';
  };
  const head = `| span, per trial (median; every trial) | ${cols.map(name).join(' | ')} |\n|---|${cols.map(() => '---|').join('')}`;
  return [head, ...SPANS.map(([l, from, to]) => `| ${l} | ${cols.map((c) => span(r[c.pl][c.k], from, to)).join(' | ')} |`)].join('\n');
}

function checks(r: Results): string {
  const masks = PLACEMENTS.map((pl) => {
    const seen = [...new Set(Object.values(r[pl]).flatMap((ts) => ts.map((t) => t.backendMask)))];
    return `${pl} ${seen.join(' / ')}`;
  });
  const hba = PLACEMENTS.flatMap((pl) => [...r[pl].pgrevoke, ...r[pl].baseline].map((t) => t.hba));
  return `CPU affinity of a backend of the target (\`taskset -p\`, every trial): ${masks.join('; ')}. pgrevoke's hba_reject step: ${[...new Set(hba)].join(', ')} in ${hba.length} of ${hba.length} runs.`;
}

function render(r: Results, major: number, load: number): string {
  const why = splitUnavailable();
  const rows = PLACEMENTS.flatMap((pl) => [
    row(pl, 'psql runbook', r[pl].runbook),
    row(pl, '`pgrevoke cutoff --yes --hba-file ...` (default playbook)', r[pl].pgrevoke),
    ...(BASELINE ? [row(pl, `the same, the build at ${baselineRev()} (baseline)`, r[pl].baseline)] : []),
  ]);
  const targets: Record<Placement, string> = { split: '<= 0.8x', shared: '<= 1.5x' };
  return `## cutoff: time to containment under a reconnecting attack

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; embedded PostgreSQL ${major}; ${TRIALS} trials per placement and command,
alternating (each round: both placements, the first one alternating; in each \`node -e 0\`, the runbook, pgrevoke${BASELINE ? ` and the baseline build, those two in turns first` : ''}); 1-minute load average ${load.toFixed(2)} when the run began (the machine is shared).
Attack: ${SESSIONS} sessions of the target querying every ${INTERVAL_MS} ms and reconnecting at once when cut (one Node process, the bench's own).
Placements: **split**, the server (postmaster pinned with \`taskset -a -p\` before the attack, backends inherit it) and the attacker on
CPU 0, the command on CPU 1 (\`taskset -c 1\`): the responder on a machine of its own; **shared**, no pinning: the responder on the database host.${why ? ` Split not measured: ${why}.` : ''}
Runbook: \`psql -c "${RUNBOOK_SQL}"\`. pgrevoke: the default playbook (compromised-credential: contain, settle, the pg_hba.conf reject
block and a reload, rollback_prepared, check_locks, disable_subscriptions, verify). Before every trial: LOGIN, CONNECTION LIMIT -1,
initdb's pg_hba.conf put back, a reload, all ${SESSIONS} sessions back. Containment = when the last successful attacker query ran on the
server (its \`clock_timestamp()\`, returned by the query) minus the moment the command was spawned (the same host's clock); "attacker's
clock" = when the attacker process saw that success, which a CPU-starved attacker sees late (see below). "Escaped" = attacker queries that still succeeded between 1 s and 2 s after the command returned; live backends of the role after that.

| placement | command | containment (median) | containment, every trial (ms) | attacker's clock (median) | command wall time (median) | escaped queries | live backends after | exit codes |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${PLACEMENTS.map((pl) => ratioLine(pl, r[pl], targets[pl])).join('\n')}

${checks(r)}

Where pgrevoke's time goes, from \`PGREVOKE_TRACE=1\` in the same trials (medians, ms since its process started; the process starts some
ms after the spawn; "record start" to "record written" is the write-ahead record, fsyncs included):

${traceTable(r)}

${spanTable(r)}

${readFileSync(path.join(ROOT, 'bench', 'cutoff-notes.md'), 'utf8').trim()}`;
}
