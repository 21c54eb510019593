// Cutoff over several nodes: each node gets its own plan and report (the single-node code path, run
// once per node). Primaries contain first; each standby waits for its primary's NOLOGIN commit to be
// replayed before it terminates. Nodes run concurrently; one that fails does not stop the others.
import type { OperatorFacts } from '../checks/types.js';
import type { Client } from '../pg/connect.js';
import { RoleAbsent, spreadExitCode, type NodeTarget } from '../pg/nodes.js';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import { stampNode } from '../record/node-stamp.js';
import { describeError } from '../errors.js';
import { mapBounded } from '../util/pool.js';
import type { CutoffReport, Snapshot } from '../record/cutoff-report.js';
import type { FleetCutoffReport, NodeOutcome, NodeStatus } from '../record/fleet-report.js';
import type { LoadedPlaybook } from './load.js';
import { collectPlanState } from './collect.js';
import { collectForSteps } from './collect-steps.js';
import type { Plan, PlanInput, PlanState } from './model.js';
import { buildPlan } from './plan.js';
import { preflight } from './preflight.js';

/** A node that answered and has a plan (refusal set when it must not be changed). */
export interface PreparedNode {
  target: NodeTarget;
  client: Client;
  state: PlanState;
  plan: Plan;
  operator: OperatorFacts;
  /** pg_control_system(): a standby shares its primary's (null when not readable). */
  systemIdentifier: string | null;
  refusal: Error | null;
  /** The snapshot, read with the plan state (`snapshot` asked for it); null or absent: the snapshot step reads it. */
  snapshot?: Snapshot | null;
}

/**
 * Read-only, per node: resolve the roles, read the state, build the plan. `snapshot`: nothing
 * stands between planning and applying (no prompt), so the snapshot step's reads may ride in the
 * plan state's round trip, when the playbook takes the snapshot first.
 */
export async function prepareNode(
  target: NodeTarget,
  client: Client,
  playbook: LoadedPlaybook,
  input: PlanInput,
  opts: { fleet: boolean; snapshot?: boolean },
): Promise<PreparedNode> {
  const snapshotFirst = Boolean(opts.snapshot) && playbook.steps[0]?.action === 'snapshot';
  const { state, operator, snapshot } = await collectPlanState(target.params, client, input, {
    absentOk: opts.fleet,
    snapshot: snapshotFirst,
  });
  await collectForSteps(client, playbook, state);
  const here = opts.fleet ? { ...input, roles: state.targets.map((t) => t.name) } : input;
  const plan = buildPlan(playbook, state, operator, target.params, here, { node: target.name });
  const systemIdentifier = opts.fleet ? (state.server.systemIdentifier ?? null) : null;
  return { target, client, state, plan, operator, systemIdentifier, refusal: null, snapshot };
}

/** Which primary a standby follows: same system identifier, else same fleet cluster. */
export function primaryOf(standby: PreparedNode, nodes: PreparedNode[]): PreparedNode | null {
  const primaries = nodes.filter((p) => !p.state.server.inRecovery);
  return (
    primaries.find((p) => standby.systemIdentifier !== null && p.systemIdentifier === standby.systemIdentifier) ??
    primaries.find((p) => standby.target.cluster !== null && p.target.cluster === standby.target.cluster) ??
    null
  );
}

/**
 * Set each node's refusal: privileges, a standby without its primary. `unreached`: targets that
 * could not be read (down, failed). A standby whose primary may be one of them (same fleet cluster,
 * or no cluster named) is not refused: the primary being down must not leave the standby's sessions
 * running. It gets no replay to wait for, ends its sessions, rejects at its own pg_hba.conf, and
 * reports that NOLOGIN was not applied.
 */
export function preflightAll(nodes: PreparedNode[], unreached: NodeTarget[] = []): void {
  const mayBePrimaryOf = (n: PreparedNode) => unreached.some((t) => t.cluster === n.target.cluster);
  for (const n of nodes)
    n.refusal = preflight(n.plan, n.state, {
      primaryInRun: n.state.server.inRecovery && (primaryOf(n, nodes) !== null || mayBePrimaryOf(n)),
    });
}

interface Deferred {
  promise: Promise<string | null>;
  resolve: (lsn: string | null) => void;
}

function deferred(): Deferred {
  let resolve!: (lsn: string | null) => void;
  const promise = new Promise<string | null>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Apply every node's plan, primaries first (a standby's slot waits on its primary's commit, so
 * primaries must never queue behind standbys), at most `concurrency` at once. `onPrimariesDone`
 * is called once every primary has committed NOLOGIN (or will not), while the nodes still settle.
 */
export async function applyAll(
  nodes: PreparedNode[],
  concurrency: number,
  run: (
    n: PreparedNode,
    hooks: { replayTarget?: Promise<string | null>; onCommitted?: (lsn: string | null) => void },
  ) => Promise<CutoffReport>,
  onPrimariesDone?: () => void,
): Promise<Map<PreparedNode, CutoffReport | Error>> {
  const commits = new Map<PreparedNode, Deferred>();
  const live = nodes.filter((n) => !n.refusal);
  for (const n of live) if (!n.state.server.inRecovery) commits.set(n, deferred());
  if (onPrimariesDone) void Promise.all([...commits.values()].map((d) => d.promise)).then(onPrimariesDone);
  const ordered = [...live.filter((n) => !n.state.server.inRecovery), ...live.filter((n) => n.state.server.inRecovery)];
  const results = new Map<PreparedNode, CutoffReport | Error>();
  await mapBounded(ordered, concurrency, async (n) => {
    const own = commits.get(n);
    const primary = n.state.server.inRecovery ? primaryOf(n, live) : null;
    try {
      results.set(
        n,
        await run(n, {
          onCommitted: own ? (lsn) => own.resolve(lsn) : undefined,
          replayTarget: primary ? commits.get(primary)!.promise : n.state.server.inRecovery ? Promise.resolve(null) : undefined,
        }),
      );
    } catch (err) {
      results.set(n, err instanceof Error ? err : new Error(String(err)));
    } finally {
      own?.resolve(null); // never committed: its standbys stop waiting
    }
  });
  return results;
}

export function outcomeOf(
  target: NodeTarget,
  prepared: PreparedNode | null,
  result: CutoffReport | Error | null,
  reached = true,
): NodeOutcome {
  const base = {
    node: target.name,
    cluster: target.cluster,
    role: prepared ? (prepared.state.server.inRecovery ? ('standby' as const) : ('primary' as const)) : null,
  };
  if (!prepared) {
    const status: NodeStatus = !reached ? 'unreachable' : result instanceof RoleAbsent ? 'absent' : 'failed';
    return { ...base, status, error: result instanceof Error ? describeError(result) : null, report: null };
  }
  if (prepared.refusal) return { ...base, status: 'refused', error: describeError(prepared.refusal), report: null };
  if (result instanceof Error || result === null)
    return { ...base, status: 'failed', error: result ? describeError(result) : 'not run', report: null };
  const status: NodeStatus =
    result.exitCode === 0
      ? result.dryRun
        ? 'planned'
        : 'contained'
      : result.exitCode === 1
        ? 'exposed'
        : result.exitCode === 2
          ? 'failed'
          : 'partial';
  return { ...base, status, error: null, report: stampNode(result, target.name) };
}

/** 2 when no node could be acted on; 3 when some nodes failed (partial); else 1 if exposure remains; else 0. */
export function fleetExitCode(nodes: NodeOutcome[], pgbouncer: Pick<PgbouncerSection, 'status'>[] = []): number {
  const spread = spreadExitCode(
    nodes.map((n) =>
      n.status === 'refused' || n.status === 'unreachable' || n.status === 'failed'
        ? 'failed'
        : n.status === 'absent' || n.status === 'partial'
          ? n.status
          : 'done',
    ),
  );
  if (spread === 2) return 2;
  if (spread === 3 || pgbouncer.some((p) => p.status === 'unreachable')) return 3;
  if (nodes.some((n) => n.status === 'exposed') || pgbouncer.some((p) => p.status === 'exposed')) return 1;
  return 0;
}

/** One line per node: what text-mode progress prints when a node is done. */
export function nodeLine(o: NodeOutcome): string {
  const r = o.report;
  const parts = [`${o.node}${o.role ? ` (${o.role})` : ''}: ${o.status}`];
  if (r) parts.push(`${r.terminated.length} terminated`);
  if (r?.replay)
    parts.push(`replay waited ${r.replay.waitedMs} ms${r.replay.caughtUp ? '' : `, ${r.replay.lagBytes ?? '?'} bytes behind`}`);
  if (r?.startedAt && r.finishedAt) parts.push(`${Date.parse(r.finishedAt) - Date.parse(r.startedAt)} ms`);
  if (o.error) parts.push(o.error);
  return parts.join(', ');
}

export interface FleetReportInput {
  targets: NodeTarget[];
  /** Per target: did the connection open. */
  reached: boolean[];
  /** Per target: its prepared node, or why it could not be prepared. */
  prepared: (PreparedNode | Error)[];
  results: Map<PreparedNode, CutoffReport | Error>;
  pgbouncer: PgbouncerSection[];
  roles: string[];
  playbook: string;
  dryRun: boolean;
  operator: FleetCutoffReport['operator'];
  reasonText: string | null;
  startedAt: string;
}

/** The one document over every node: a section per node in the order named, the consoles, all exposure. */
export function buildFleetReport(x: FleetReportInput): FleetCutoffReport {
  const nodes = x.targets.map((t, i) => {
    const p = x.prepared[i]!;
    return p instanceof Error ? outcomeOf(t, null, p, x.reached[i]) : outcomeOf(t, p, x.results.get(p) ?? null);
  });
  const notContained = (n: NodeOutcome) => n.status === 'unreachable' || n.status === 'refused' || n.status === 'failed';
  return {
    schemaVersion: 1,
    kind: 'fleet',
    roles: [...new Set(x.roles)],
    playbook: x.playbook,
    dryRun: x.dryRun,
    operator: x.operator,
    reasonText: x.reasonText,
    startedAt: x.startedAt,
    finishedAt: new Date().toISOString(),
    nodes,
    pgbouncer: x.pgbouncer,
    exposure: [
      ...nodes.flatMap((n) => [
        ...(n.report?.exposure ?? []).map((e) => `${n.node}: ${e}`),
        ...(notContained(n) ? [`${n.node}: not contained (${n.status}): ${n.error ?? ''}`] : []),
      ]),
      ...x.pgbouncer.flatMap((s) =>
        s.status === 'unreachable' ? [`${s.node}: not reached: ${s.error ?? ''}`] : s.exposure.map((e) => `${s.node}: ${e}`),
      ),
    ],
    exitCode: fleetExitCode(nodes, x.pgbouncer),
  };
}
