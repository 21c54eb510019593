// cutoff as one call, over one node or a fleet (one node is a fleet of one with `fleet: false`):
// connect while the playbook loads, prepare and preflight every node, confirm (re-planning for
// --include-created), write the record ahead, apply every node (primaries first), run the PgBouncer
// consoles once NOLOGIN has committed, build the report, close the record. The command passes the
// parsed options and what only it knows (the prompt, where lines go); it renders what comes back.
import type { Client } from '../pg/connect.js';
import { describeError, ExitCode, PgrevokeError } from '../errors.js';
import type { PgbouncerTarget } from '../fleet/targets.js';
import { connectAll, RoleAbsent, type NodeTarget } from '../pg/nodes.js';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import type { CutoffRecord } from '../record/journal.js';
import { refusedReport, type CutoffReport, type ReportStep } from '../record/cutoff-report.js';
import { closeRecord, openRecord, recordedBefores, stepOutcome } from '../record/cutoff-run.js';
import type { FleetCutoffReport } from '../record/fleet-report.js';
import { mapBounded } from '../util/pool.js';
import { trace } from '../util/trace.js';
import { apply } from './apply.js';
import { administeredSince } from './collect.js';
import type { ConfirmFacts } from './confirm-facts.js';
import { DryRunExecutor, PgExecutor } from './executor.js';
import { applyAll, buildFleetReport, nodeLine, outcomeOf, preflightAll, prepareNode, type PreparedNode } from './fleet.js';
import { Interrupt } from './interrupt.js';
import type { LoadedPlaybook } from './load.js';
import type { Plan, PlanInput } from './model.js';
import { SESSION_LOCK_TIMEOUT_MS } from './sql.js';

export interface CutoffRequest {
  /** The plan input; its roles are the names as given. */
  input: PlanInput;
  /** --playbook (undefined: the default playbook). */
  playbook: string | undefined;
  targets: NodeTarget[];
  pgbouncers: PgbouncerTarget[];
  /** Several nodes, --fleet or --pgbouncer: a node that fails or refuses is a section of the fleet report, not the end. */
  fleet: boolean;
  dryRun: boolean;
  /** --reason. */
  reason: string | null;
  /** --pgbouncer-kill-pool. */
  killPool: boolean;
  /** --concurrency: nodes prepared and applied at once. */
  concurrency: number;
  /** Who runs it, as reports and the record name them. */
  operator: { osUser: string; host: string };
}

export interface CutoffHooks {
  /**
   * Ask before applying: the plans, the PgBouncer commands planned now, and per plan what the
   * confirmation read of the live server (src/playbook/confirm-facts.ts). Null: apply without asking (--yes, --dry-run).
   */
  confirm: ((plans: Plan[], consoles: PgbouncerSection[], facts: ConfirmFacts[]) => Promise<boolean>) | null;
  /** A line on stderr in every mode: the record, a signal, roles joining the plan. */
  note: (line: string) => void;
  /** Progress as it happens, a line per step (one node) or per node and console (a fleet); null: none (JSON mode). */
  progress: ((line: string) => void) | null;
  /** One node's steps as they start and end (a terminal's spinner line each), instead of `progress`'s line per step. */
  steps?: ((step: ReportStep, phase: 'start' | 'end') => void) | null;
  /**
   * The caller owns SIGINT/SIGTERM (pgrevoke serve drains on them): no signal handler is installed,
   * and apply runs under this interrupt; triggering it cancels the running statement as a signal does.
   * Without it, a signal during apply cancels the run (the cutoff command).
   */
  interrupt?: Interrupt;
}

/** A node of a fleet that must not be changed, and why (a refusal, not a failure: trying again changes nothing). */
export interface NodeRefusal {
  node: string;
  reason: string;
}

export type CutoffOutcome =
  /** `refusals`: over a fleet, the nodes refused before any change (refusalsOf). */
  | { kind: 'report'; report: CutoffReport | FleetCutoffReport; refusals?: NodeRefusal[] }
  /** One node (not a fleet) that must not be changed: the report to write, then the refusal to raise. */
  | { kind: 'refused'; report: CutoffReport; refusal: Error }
  /** The operator said no at the prompt: nothing was changed. */
  | { kind: 'declined' };

/** A run between connecting and closing: every node as named, and what became of it. */
interface Session {
  req: CutoffRequest;
  hooks: CutoffHooks;
  pb: LoadedPlaybook;
  clients: (Client | Error)[];
  /** Per target: its prepared node, or why it could not be prepared. */
  prepared: (PreparedNode | Error)[];
  /** The nodes that answered and have a plan. */
  live: PreparedNode[];
  /** Targets that could not be read (down, failed), not those without the role. */
  unreached: NodeTarget[];
}

/** What apply left: per node its report or failure, when it started, the PgBouncer sections (run once). */
interface Applied {
  results: Map<PreparedNode, CutoffReport | Error>;
  startedAt: string;
  consoles: () => Promise<PgbouncerSection[]>;
}

/**
 * The whole cutoff: a report, a single node's refusal (its report written, then raised), or a
 * declined prompt. A single node that cannot be reached or read, or that fails during apply, is
 * raised as it is (after its record is closed); over a fleet it is that node's section.
 */
export async function runCutoff(req: CutoffRequest, hooks: CutoffHooks): Promise<CutoffOutcome> {
  const { pb, clients } = await connectAndLoad(req);
  try {
    if (pb instanceof Error) throw pb;
    if (!req.fleet && clients[0] instanceof Error) throw clients[0];
    trace('connected, playbook loaded');
    const s = await prepareAll(req, hooks, pb, clients);
    const refused = refusal(s);
    if (refused) return refused;
    // a fleet none of whose nodes may be changed: its report, with no record and nothing run
    if (req.fleet && runnable(s).length === 0) return reportOf(s);
    const stopped = await confirm(s);
    if (stopped) return stopped;
    const record = await recordAhead(s);
    const applied = await applyNodes(s, record);
    return req.fleet ? await finishFleet(s, applied, record) : await finishSingle(s, applied, record);
  } finally {
    await Promise.all(clients.map((c) => (c instanceof Error ? undefined : c.end().catch(() => undefined))));
  }
}

/** Time to containment counts from process start: connect while the playbook (YAML + schema) loads. */
async function connectAndLoad(req: CutoffRequest): Promise<{ pb: LoadedPlaybook | Error; clients: (Client | Error)[] }> {
  trace('cutoff module loaded');
  const [pb, clients] = await Promise.all([
    import('./load.js')
      .then((m) => m.loadPlaybook(req.playbook))
      .then(
        (p) => p,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => trace('playbook loaded')),
    connectAll(req.targets, { lockTimeoutMs: SESSION_LOCK_TIMEOUT_MS }).finally(() => trace('session open')),
  ]);
  return { pb, clients };
}

/** Read-only, every node at once: its plan, its refusal, recorded before-states. One node's failure ends a single-node run. */
async function prepareAll(req: CutoffRequest, hooks: CutoffHooks, pb: LoadedPlaybook, clients: (Client | Error)[]): Promise<Session> {
  const { targets, fleet } = req;
  // no prompt between the plan and the first change: the snapshot may be read with the plan
  const snapshot = req.dryRun || !hooks.confirm;
  const prepared = await mapBounded(targets, req.concurrency, async (t) => {
    const c = clients[targets.indexOf(t)]!;
    if (c instanceof Error) return c;
    return prepareNode(t, c, pb, req.input, { fleet, snapshot }).catch((err: unknown) =>
      err instanceof Error ? err : new Error(String(err)),
    );
  });
  if (!fleet && prepared[0] instanceof Error) throw prepared[0];
  const live = prepared.filter((p): p is PreparedNode => !(p instanceof Error));
  const unreached = targets.filter((_, i) => prepared[i] instanceof Error && !(prepared[i] instanceof RoleAbsent));
  const s: Session = { req, hooks, pb, clients, prepared, live, unreached };
  await preflightAndRecall(s);
  trace('plan built');
  return s;
}

async function preflightAndRecall(s: Session): Promise<void> {
  preflightAll(s.live, s.unreached);
  await recordedBefores(s.live.map(recordNode));
}

/** The nodes that will be changed (or dry-run). */
const runnable = (s: Session) => s.live.filter((n) => !n.refusal);

/** A node as its record names it. */
const recordNode = (n: PreparedNode) => ({
  plan: n.plan,
  standby: n.state.server.inRecovery,
  systemIdentifier: n.state.server.systemIdentifier ?? null,
});

/** The operator as one node's report names it. */
const who = (s: Session, n: PreparedNode) => ({
  user: n.operator.user,
  osUser: s.req.operator.osUser,
  host: s.req.operator.host,
  superuser: n.operator.superuser,
});

/** A single node that must not be changed: its refused report (every step skipped, exit 2). Null over a fleet. */
function refusal(s: Session): CutoffOutcome | null {
  const single = s.req.fleet ? null : s.live[0]!;
  if (!single?.refusal) return null;
  const report = refusedReport(single.plan, who(s, single), single.refusal.message, s.req.reason, s.req.dryRun);
  return { kind: 'refused', report, refusal: single.refusal };
}

/**
 * Ask, when asked to (never for a dry run); with --include-created, the roles the targets came to
 * administer while the prompt was up join the plan (the flag asked for them), which is then
 * preflighted again. Null: go on.
 */
async function confirm(s: Session): Promise<CutoffOutcome | null> {
  const ask = s.req.dryRun ? null : s.hooks.confirm;
  if (!ask) return null;
  const nodes = runnable(s);
  const { readConfirmFacts } = await import('./confirm-facts.js');
  const [consoles, facts] = await Promise.all([
    pgbouncerPlan(s.req, true),
    mapBounded(nodes, s.req.concurrency, (n) => readConfirmFacts(n.client, n.plan)),
  ]);
  const plans = nodes.map((n) => n.plan);
  if (!(await ask(plans, consoles, facts))) return { kind: 'declined' };
  if (!s.req.input.includeCreated || !(await includeCreatedSince(s))) return null;
  await preflightAndRecall(s);
  return refusal(s);
}

/** Re-plan each node whose targets came to administer new roles since planning; true if any did. */
async function includeCreatedSince(s: Session): Promise<boolean> {
  let changed = false;
  for (const n of runnable(s)) {
    const fresh = await administeredSince(n.client, n.state);
    if (!fresh.length) continue;
    changed = true;
    s.hooks.note(
      `pgrevoke: ${n.target.name}: made since the plan was shown, included (--include-created): ${fresh.map((r) => JSON.stringify(r)).join(', ')}`,
    );
    Object.assign(n, await prepareNode(n.target, n.client, s.pb, s.req.input, { fleet: s.req.fleet }));
  }
  return changed;
}

/** The PgBouncer commands over every console: planned only (`dryRun`), or run. */
function pgbouncerPlan(req: CutoffRequest, dryRun: boolean): Promise<PgbouncerSection[]> {
  return import('../pgbouncer/section.js').then(({ cutoffSection }) =>
    Promise.all(req.pgbouncers.map((t) => cutoffSection(t, [...new Set(req.input.roles)], { killPool: req.killPool, dryRun }))),
  );
}

/** Written ahead: the plan and every before-state are on disk before the first change (no record for a dry run). */
async function recordAhead(s: Session): Promise<CutoffRecord | null> {
  trace('record start');
  const record = s.req.dryRun
    ? null
    : await openRecord(runnable(s).map(recordNode), { playbook: s.pb.name, operator: s.req.operator, reasonText: s.req.reason });
  trace('record written');
  return record;
}

/**
 * Apply every runnable node under one interrupt: SIGINT/SIGTERM (or the caller's interrupt), or a
 * step the record cannot take (nothing changes unrecorded). Over a fleet the PgBouncer consoles run
 * once every primary has committed NOLOGIN (a RECONNECT before it would log the role straight back
 * in), while the nodes still settle: a shared-user pool's clients are cut sooner.
 */
async function applyNodes(s: Session, record: CutoffRecord | null): Promise<Applied> {
  const interrupt = s.hooks.interrupt ?? new Interrupt();
  if (record)
    record.onFailure = (err) => {
      s.hooks.note(
        `pgrevoke: the cutoff record ${record.file} could not be written (${(err as Error).message}): stopping before the next step`,
      );
      interrupt.trigger('the cutoff record could not be written');
    };
  const unlisten = s.hooks.interrupt ? () => undefined : cancelOnSignal(s, interrupt);
  const startedAt = new Date().toISOString();
  let sections: Promise<PgbouncerSection[]> | null = null;
  const consoles = () => (sections ??= pgbouncerPlan(s.req, s.req.dryRun));
  try {
    const results = await applyAll(
      runnable(s),
      s.req.concurrency,
      (n, hooks) => applyNode(s, n, { ...hooks, record, interrupt }),
      s.req.fleet ? consoles : undefined,
    );
    return { results, startedAt, consoles };
  } finally {
    unlisten();
  }
}

/** SIGINT/SIGTERM trigger the interrupt while apply runs; returns the unsubscribe. */
function cancelOnSignal(s: Session, interrupt: Interrupt): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    if (!interrupt.interrupted) s.hooks.note(`pgrevoke: ${sig}: cancelling the running statement, then writing the report`);
    interrupt.trigger();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

interface NodeRun {
  record: CutoffRecord | null;
  interrupt: Interrupt;
  replayTarget?: Promise<string | null>;
  onCommitted?: (lsn: string | null) => void;
}

/** One node's playbook through its own executor; each step recorded as it ends. */
async function applyNode(s: Session, n: PreparedNode, { record, interrupt, ...hooks }: NodeRun): Promise<CutoffReport> {
  const exec = s.req.dryRun ? new DryRunExecutor() : new PgExecutor(n.target.params, n.client, interrupt);
  try {
    const report = await apply({
      plan: n.plan,
      state: n.state,
      exec,
      reader: n.client,
      params: n.target.params,
      operator: who(s, n),
      reasonText: s.req.reason,
      snapshot: n.snapshot,
      interrupt,
      ...hooks,
      onStep: (step, phase) => {
        if (phase === 'end') record?.step(n.plan.node, stepOutcome(step));
        if (!s.req.fleet) stepProgress(s, step, phase);
      },
    });
    // a fleet's progress: one line per node
    if (s.req.fleet && s.hooks.progress) s.hooks.progress(`pgrevoke: ${nodeLine(outcomeOf(n.target, n, report))}`);
    return report;
  } finally {
    await exec.close();
  }
}

/** One node's progress: a trace point at each step's start and end, and the steps hook, or a line as each starts. */
function stepProgress(s: Session, step: ReportStep, phase: 'start' | 'end'): void {
  trace(`${step.action} ${phase}`);
  if (s.hooks.steps) s.hooks.steps(step, phase);
  else if (phase === 'start' && s.hooks.progress)
    s.hooks.progress(
      `pgrevoke: ${step.action}${step.role !== null ? ` ${JSON.stringify(step.role)}` : ''}${step.database !== null ? ` in ${JSON.stringify(step.database)}` : ''} ...`,
    );
}

/** One node: its report, with the record closed on it; a node that failed is the run's error, after closing the record. */
async function finishSingle(s: Session, { results }: Applied, record: CutoffRecord | null): Promise<CutoffOutcome> {
  const r = results.get(s.live[0]!)!;
  if (r instanceof Error) {
    await closeRecord(record, ExitCode.PARTIAL, { error: r.message }, s.hooks.note);
    throw r;
  }
  r.record = record?.file ?? null;
  r.exitCode = await closeRecord(record, r.exitCode, r, s.hooks.note);
  return { kind: 'report', report: r };
}

/** A fleet: the consoles' outcome, then the one document over every node, with the record closed on it. */
async function finishFleet(s: Session, applied: Applied, record: CutoffRecord | null): Promise<CutoffOutcome> {
  const sections = await applied.consoles();
  if (s.hooks.progress) for (const c of sections) s.hooks.progress(`pgrevoke: ${c.node}: ${c.status}${c.error ? `, ${c.error}` : ''}`);
  const { report, refusals } = reportOf(s, applied, sections);
  report.record = record?.file ?? null;
  report.exitCode = await closeRecord(record, report.exitCode, report, s.hooks.note);
  return { kind: 'report', report, refusals };
}

/**
 * The nodes refused before any change: preflight's refusal (what the operator may not do), or a
 * target refused while planning (a built-in role, the operator's own: collect.ts's usage errors
 * on a node that answered). Not a node that could not be reached or read.
 */
function refusalsOf(s: Session): NodeRefusal[] {
  return s.req.targets.flatMap((t, i) => {
    const p = s.prepared[i]!;
    const reached = !(s.clients[i] instanceof Error);
    const why = p instanceof PgrevokeError ? (reached && p.exitCode === ExitCode.USAGE ? p : null) : p instanceof Error ? null : p.refusal;
    return why ? [{ node: t.name, reason: describeError(why) }] : [];
  });
}

/** The fleet report; without `applied`, of a fleet none of whose nodes may be changed (no record, nothing run). */
function reportOf(
  s: Session,
  applied?: Applied,
  pgbouncer: PgbouncerSection[] = [],
): { kind: 'report'; report: FleetCutoffReport; refusals: NodeRefusal[] } {
  const report = buildFleetReport({
    targets: s.req.targets,
    reached: s.clients.map((c) => !(c instanceof Error)),
    prepared: s.prepared,
    results: applied?.results ?? new Map(),
    pgbouncer,
    roles: s.req.input.roles,
    playbook: s.pb.name,
    dryRun: s.req.dryRun,
    operator: s.req.operator,
    reasonText: s.req.reason,
    startedAt: applied?.startedAt ?? new Date().toISOString(),
  });
  return { kind: 'report', report, refusals: refusalsOf(s) };
}
