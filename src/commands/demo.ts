// pgrevoke demo: an embedded PostgreSQL, a staged compromise, then the real commands a responder
// would run (inspect, cutoff, inspect again), and proof from the attacker's side. Exit 0 only if
// containment was verified: cutoff exit 0, verdict contained, no attacker query after the cutoff,
// and the bystander unharmed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Context, type GlobalOptions } from '../context.js';
import { DEMO_BYSTANDER, DEMO_ROLE, stageCompromise, type Staged } from '../demo/stage.js';
import { DEFAULT_MAJOR, EmbeddedCluster } from '../embedded/cluster.js';
import { ExitCode } from '../errors.js';
import { numberFlag } from '../util/flags.js';
import { packageRoot } from '../util/package-root.js';

const BIN = path.join(packageRoot(), 'bin', 'pgrevoke.js');

interface DemoFlags {
  major?: string;
  keep?: boolean;
  attackSessions?: string;
}

interface Child {
  code: number | null;
  stdout: string;
}

export interface DemoProof {
  cutoffExit: number | null;
  verdictAfter: string | null;
  attackerQueriesBefore: number;
  attackerQueriesAfterCutoff: number;
  lastAttackerQueryMsAfterCutoffStart: number | null;
  refusedLogins: number;
  bystanderUnblocked: boolean;
  bystanderAlive: boolean;
  contained: boolean;
}

function runChild(args: string[], env: NodeJS.ProcessEnv, capture: boolean): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env,
      stdio: ['ignore', capture ? 'pipe' : 'inherit', capture ? 'pipe' : 'inherit'],
    });
    let stdout = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

function say(ctx: Context, text: string): void {
  if (!ctx.json) ctx.note(text);
}

function heading(ctx: Context, text: string): void {
  say(ctx, `\n${ctx.c.bold.cyan(text)}`);
}

/** Ctrl+C: exit at once; the embedded cluster's exit hook stops the server and removes its data. */
function onInterrupt(ctx: Context, work: string): (sig: NodeJS.Signals) => void {
  return (sig) => {
    ctx.note(`pgrevoke: ${sig}: stopping the embedded PostgreSQL and removing its data`);
    rmSync(work, { recursive: true, force: true });
    process.exit(ExitCode.PARTIAL); // interrupted: the table's code for a run cut short
  };
}

async function startCluster(ctx: Context, cluster: EmbeddedCluster, major: number): Promise<void> {
  const p = await ctx.progress(`starting an embedded PostgreSQL ${major}`);
  try {
    await cluster.start();
  } catch (err) {
    p.fail('could not start the embedded PostgreSQL');
    throw err;
  }
  p.succeed(`embedded PostgreSQL ${major} on 127.0.0.1:${cluster.port} (data in ${cluster.dataDir})`);
}

async function stage(ctx: Context, cluster: EmbeddedCluster, sessions: number): Promise<Staged> {
  const s = await ctx.progress('staging a compromise');
  const staged = await stageCompromise(cluster, { attackSessions: sessions });
  s.succeed(
    `staged: ${sessions} "${DEMO_ROLE}" sessions exfiltrating customers every 20 ms (reconnecting when cut), a row lock blocking "${DEMO_BYSTANDER}", ` +
      `a prepared transaction, a reject rule shadowed by an earlier pg_hba.conf line, a SECURITY DEFINER function`,
  );
  return staged;
}

/** The responder's environment: the embedded cluster's superuser; none of the caller's settings may point elsewhere. */
function responderEnv(cluster: EmbeddedCluster): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: '127.0.0.1',
    PGPORT: String(cluster.port),
    PGUSER: 'postgres',
    PGDATABASE: 'postgres',
    PGPASSWORD: cluster.password,
  };
  delete env.DATABASE_URL;
  delete env.PGSERVICE;
  return env;
}

/** What the responder's commands showed, and what the attacker got done around the cutoff. */
interface Response {
  /** Each command's JSON document (--json), else its exit code; keyed by step. */
  results: Record<string, unknown>;
  reportFile: string;
  cutoffExit: number | null;
  verdictAfter: string | null;
  attackerQueriesBefore: number;
  attackerQueriesAfterCutoff: number;
  /** performance.now() when the cutoff started. */
  cutoffStart: number;
}

/** The inspect after the cutoff: read as JSON for the verdict, shown as text to the reader. */
async function verifyInspect(ctx: Context, env: NodeJS.ProcessEnv): Promise<{ verdictAfter: string | null; inspectAfter: unknown }> {
  const verify = await runChild(['inspect', DEMO_ROLE, '--json'], env, true);
  const verdictAfter = (JSON.parse(verify.stdout || '{}') as { verdict?: string }).verdict ?? null;
  heading(ctx, `$ pgrevoke inspect ${DEMO_ROLE}    # verification`);
  if (!ctx.json) await runChild(['inspect', DEMO_ROLE], env, false);
  return { verdictAfter, inspectAfter: ctx.json ? JSON.parse(verify.stdout || 'null') : { verdict: verdictAfter } };
}

/** inspect, cutoff, inspect again: each a child pgrevoke, as a responder would type it. */
async function respond(ctx: Context, cluster: EmbeddedCluster, staged: Staged, work: string): Promise<Response> {
  const env = responderEnv(cluster);
  const results: Record<string, unknown> = {};
  const json = ctx.json ? ['--json'] : [];
  const step = async (label: string, args: string[]) => {
    heading(ctx, `$ pgrevoke ${args.join(' ')}`);
    const r = await runChild([...args, ...json], env, ctx.json);
    results[label] = ctx.json ? JSON.parse(r.stdout || 'null') : { exitCode: r.code };
    return r;
  };

  await step('inspectBefore', ['inspect', DEMO_ROLE]);
  const before = staged.attacker.stats.successes;
  const reportFile = path.join(work, 'cutoff-report.json');
  const cutoffStart = performance.now();
  const cut = await step('cutoff', [
    'cutoff',
    DEMO_ROLE,
    '--yes',
    '--hba-file',
    cluster.hbaFile,
    '--report',
    reportFile,
    '--markdown',
    path.join(work, 'incident.md'),
    '--audit-log',
    path.join(work, 'audit.jsonl'),
  ]);
  const afterCut = staged.attacker.stats.successes;
  // watch the attacker for a while: any query that still succeeds has escaped
  await new Promise((r) => setTimeout(r, 1500));
  const escaped = staged.attacker.stats.successes - afterCut;
  const { verdictAfter, inspectAfter } = await verifyInspect(ctx, env);
  results.inspectAfter = inspectAfter;
  return {
    results,
    reportFile,
    cutoffExit: cut.code,
    verdictAfter,
    attackerQueriesBefore: before,
    attackerQueriesAfterCutoff: escaped,
    cutoffStart,
  };
}

/** The response's numbers, and the bystander's side: its blocked UPDATE went through, its session lives. */
async function prove(staged: Staged, r: Response): Promise<DemoProof> {
  const bystanderUnblocked = await Promise.race([staged.blockedUpdate, new Promise<boolean>((res) => setTimeout(() => res(false), 2000))]);
  const bystanderAlive = await staged.bystander.query('SELECT 1').then(
    () => true,
    () => false,
  );
  const last = staged.attacker.stats.lastSuccessAt;
  return {
    cutoffExit: r.cutoffExit,
    verdictAfter: r.verdictAfter,
    attackerQueriesBefore: r.attackerQueriesBefore,
    attackerQueriesAfterCutoff: r.attackerQueriesAfterCutoff,
    lastAttackerQueryMsAfterCutoffStart: last === null ? null : Math.max(0, Math.round(last - r.cutoffStart)),
    refusedLogins: staged.attacker.stats.refusals,
    bystanderUnblocked,
    bystanderAlive,
    contained:
      r.cutoffExit === 0 && r.verdictAfter === 'contained' && r.attackerQueriesAfterCutoff === 0 && bystanderUnblocked && bystanderAlive,
  };
}

function renderProof(ctx: Context, proof: DemoProof, reportFile: string, keep: boolean): void {
  heading(ctx, 'Proof, from the attacker\u2019s side');
  const ok = (b: boolean) => (b ? ctx.c.green('yes') : ctx.c.red('NO'));
  ctx.out(`attacker queries before the cutoff:        ${proof.attackerQueriesBefore}`);
  ctx.out(`last attacker query, after cutoff started:  ${proof.lastAttackerQueryMsAfterCutoffStart ?? '-'} ms`);
  ctx.out(`attacker queries in the 1.5 s after:        ${proof.attackerQueriesAfterCutoff} escaped`);
  ctx.out(`attacker logins refused since:              ${proof.refusedLogins}`);
  ctx.out(`bystander's blocked UPDATE went through:    ${ok(proof.bystanderUnblocked)}`);
  ctx.out(`bystander's session still alive:            ${ok(proof.bystanderAlive)}`);
  ctx.out(`verdict after:                              ${proof.verdictAfter}`);
  ctx.out(`report: ${reportFile}${keep ? '' : ' (removed on exit; --keep to keep it)'}`);
  ctx.out(proof.contained ? ctx.c.green.bold('CONTAINED and verified.') : ctx.c.red.bold('NOT contained: see above.'));
}

export async function run([flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as DemoFlags;
  // 18 ships with pgrevoke
  const major = numberFlag(f.major, '--major', { integer: true, min: 14, max: 18 }) ?? DEFAULT_MAJOR;
  const sessions = numberFlag(f.attackSessions, '--attack-sessions', { integer: true, min: 1, max: 500 }) ?? 20;

  const work = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-demo-'));
  const cluster = new EmbeddedCluster({ major, password: `demopw_${Math.random().toString(36).slice(2)}` });
  let staged: Staged | undefined;
  const onSignal = onInterrupt(ctx, work);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await startCluster(ctx, cluster, major);
    staged = await stage(ctx, cluster, sessions);
    const response = await respond(ctx, cluster, staged, work);
    const proof = await prove(staged, response);
    if (ctx.json) ctx.printJson({ schemaVersion: 1, demo: true, major, reportFile: response.reportFile, ...response.results, proof });
    else renderProof(ctx, proof, response.reportFile, Boolean(f.keep));
    return proof.contained ? ExitCode.OK : ExitCode.EXPOSED;
  } finally {
    await staged?.teardown();
    if (f.keep) say(ctx, `kept: cluster data ${cluster.baseDir} (stopped), reports ${work}`);
    await (f.keep ? cluster.stop() : cluster.destroy());
    if (!f.keep) rmSync(work, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
