// pgrevoke inspect <role>: read-only; exit 0 whenever the inspection ran, whatever the verdict.
// Several nodes (--target, --fleet): one section per node; 3 when some could not be inspected.
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, PgrevokeError } from '../errors.js';
import { inspectRole, type InspectReport } from '../inspect/index.js';
import { nodeDoneLine, nodesExitCode, RoleAbsent, runOnNodes, type NodeResult } from '../pg/nodes.js';
import { renderInspect } from '../report/inspect-text.js';
import { nodeHeading, shownName } from '../report/format.js';
import { renderPgbouncer } from '../report/pgbouncer.js';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import { resolveTargets } from '../fleet/targets.js';
import { connect } from '../pg/connect.js';
import { countFlag } from '../util/flags.js';

interface InspectFlags {
  allDatabases?: boolean;
  concurrency?: string;
  nodeConcurrency?: string;
  target?: string[];
  fleet?: string;
  only?: string[];
  pgbouncer?: string[];
}

export interface FleetInspectReport {
  schemaVersion: 1;
  kind: 'fleet';
  role: string;
  /** exposed on any node wins; unknown when a node could not be inspected and none is exposed. */
  verdict: 'exposed' | 'contained' | 'unknown';
  nodes: NodeResult<InspectReport>[];
  /** Each PgBouncer console: the role's pooled clients, the servers behind them, findings. */
  pgbouncer: PgbouncerSection[];
}

export async function run([role, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const opts = flags as InspectFlags;
  const inspectOpts = { allDatabases: opts.allDatabases, concurrency: countFlag(opts.concurrency, '--concurrency', 4) };
  // parsed even when one node makes it unused: a bad number is exit 2 wherever it is given
  const nodeConcurrency = countFlag(opts.nodeConcurrency, '--node-concurrency', 16);
  const { nodes: targets, pgbouncers } = await resolveTargets(opts, g, 'pgrevoke');
  if (targets.length === 1 && !opts.fleet && pgbouncers.length === 0) {
    const { params } = targets[0]!;
    const client = await connect(params);
    const close = () => client.end().catch(() => undefined);
    try {
      const progress = await ctx.progress(`inspecting ${shownName(String(role))}`);
      const report = await inspectRole(params, client, String(role), inspectOpts).finally(() => progress.stop());
      if (ctx.json) ctx.printJson(report);
      else ctx.out(renderInspect(report, ctx.c));
      return ExitCode.OK;
    } finally {
      await close();
    }
  }

  // text mode: one line of progress per node as it is done
  const done = (r: NodeResult<InspectReport>) =>
    !ctx.json && ctx.note(nodeDoneLine(r, r.value ? `${r.role}, ${r.value.verdict}` : undefined));
  const { inspectSection } = await import('../pgbouncer/section.js');
  const [nodes, sections] = await Promise.all([
    runOnNodes(
      targets,
      nodeConcurrency,
      (t, client) =>
        inspectRole(t.params, client, String(role), inspectOpts).catch((err: unknown) => {
          // resolveRole's "does not exist": in a fleet that cluster simply has nothing to inspect
          throw err instanceof PgrevokeError && err.sqlstate === '42704' ? new RoleAbsent(`${err.message} here`) : err;
        }),
      done,
    ),
    Promise.all(pgbouncers.map((t) => inspectSection(t, [String(role)]))),
  ]);
  const report: FleetInspectReport = {
    schemaVersion: 1,
    kind: 'fleet',
    role: String(role),
    verdict:
      nodes.some((n) => n.value?.verdict === 'exposed') || sections.some((s) => s.status === 'exposed')
        ? 'exposed'
        : nodes.every((n) => n.value || n.status === 'absent') && nodes.some((n) => n.value) && sections.every((s) => s.inspection)
          ? 'contained'
          : 'unknown',
    nodes,
    pgbouncer: sections,
  };
  if (ctx.json) ctx.printJson(report);
  else {
    const out: string[] = [];
    for (const n of nodes) {
      out.push(nodeHeading(n, ctx.c));
      out.push(n.value ? renderInspect(n.value, ctx.c) : ctx.c.red(`${n.status}: ${n.error ?? ''}`));
      out.push('');
    }
    for (const s of sections) out.push(renderPgbouncer(s, ctx.c), '');
    const verdict = report.verdict.toUpperCase();
    out.push(
      `${shownName(report.role)} on ${nodes.length} nodes: ${report.verdict === 'contained' ? ctx.c.green.bold(verdict) : ctx.c.red.bold(verdict)}` +
        ` (${nodes.filter((n) => n.value?.verdict === 'exposed').length} exposed, ${nodes.filter((n) => n.status === 'absent').length} without the role, ${nodes.filter((n) => n.status === 'unreachable' || n.status === 'failed').length} not inspected)`,
    );
    ctx.out(out.join('\n'));
  }
  return (
    nodesExitCode([...nodes, ...sections.map((s) => ({ status: s.inspection ? ('ok' as const) : ('unreachable' as const) }))]) ??
    ExitCode.OK
  );
}
