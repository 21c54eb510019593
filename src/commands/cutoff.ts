// pgrevoke cutoff <role...>: the containment playbook. Thin: options -> plan -> confirm -> apply -> report.
import os from 'node:os';
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { apply, Interrupt, refusedReport, type CutoffReport } from '../playbook/apply.js';
import { DryRunExecutor, PgExecutor } from '../playbook/executor.js';
import {
  applyAll,
  buildFleetReport,
  nodeLine,
  outcomeOf,
  preflightAll,
  prepareNode,
  type FleetCutoffReport,
  type PreparedNode,
} from '../playbook/fleet.js';
import { connectAll, RoleAbsent } from '../pg/nodes.js';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import type { LoadedPlaybook } from '../playbook/load.js';
import { SESSION_LOCK_TIMEOUT_MS } from '../playbook/sql.js';
import { checkOutputs, writeFileSafe } from '../record/safe-write.js';
import { closeRecord, openRecord, recordedBefores, stepOutcome } from '../record/cutoff-run.js';
import { administeredSince, type Plan, type PlanInput } from '../playbook/plan.js';
import { countFlag, numberFlag } from '../util/flags.js';
import { mapBounded } from '../util/pool.js';
import { trace } from '../util/trace.js';
import { resolveTargets } from '../fleet/targets.js';
import { osUserName } from './common.js';

export interface CutoffFlags {
  playbook?: string;
  dryRun?: boolean;
  yes?: boolean;
  hbaFile?: string;
  rotatePassword?: boolean;
  reassignTo?: string;
  settleTimeout?: string;
  hiddenGrace?: string;
  report?: string;
  markdown?: string;
  auditLog?: string;
  reason?: string;
  target?: string[];
  pgbouncerKillPool?: boolean;
  fleet?: string;
  only?: string[];
  pgbouncer?: string[];
  concurrency?: string;
  includeCreated?: boolean;
}

type AnyReport = CutoffReport | FleetCutoffReport;

/**
 * Write the files asked for, then print the report. Their paths passed checkOutputs before any
 * change; one that still fails (a full disk) makes the exit 3 (2 when nothing was changed), and the
 * report goes to stderr in full as well, so that nothing of it is lost.
 */
async function writeOutputs(ctx: Context, report: AnyReport, f: CutoffFlags): Promise<ExitCode> {
  // renderers and the audit writer load after containment, off the critical path
  const [
    { appendAudit },
    { auditEntries, auditReasonOf, pgbouncerAuditEntries },
    { renderCutoff, renderMarkdown, renderFleet, renderFleetMarkdown },
  ] = await Promise.all([import('../record/audit.js'), import('../record/cutoff-audit.js'), import('../report/cutoff.js')]);
  const fleet = 'kind' in report;
  const nodeReports = fleet ? report.nodes.flatMap((n) => (n.report ? [n.report] : [])) : [report];
  // no masking over the document: secrets are kept out at their sources (src/pg/redact.ts)
  const json = JSON.stringify(report, null, 2) + '\n';
  const failed: string[] = [];
  const attempt = async (flag: string, file: string, write: () => Promise<unknown>) => {
    try {
      const notice = await write();
      if (typeof notice === 'string') ctx.note(`pgrevoke: ${notice}`);
    } catch (err) {
      failed.push(`pgrevoke: error: could not write ${flag} ${file}: ${(err as Error).message}`);
    }
  };
  if (f.report) await attempt('--report', f.report, () => writeFileSafe(f.report!, json));
  if (f.markdown)
    await attempt('--markdown', f.markdown, () => writeFileSafe(f.markdown!, fleet ? renderFleetMarkdown(report) : renderMarkdown(report)));
  if (f.auditLog && !report.dryRun)
    await attempt('--audit-log', f.auditLog, () =>
      appendAudit(f.auditLog!, [
        ...nodeReports.flatMap((r) => auditEntries(r, f.reason)),
        ...(fleet ? pgbouncerAuditEntries(report, auditReasonOf(nodeReports[0]?.playbook.reason), f.reason) : []),
      ]),
    );
  const text = ctx.json ? '' : fleet ? renderFleet(report, ctx.c) : renderCutoff(report, ctx.c);
  if (ctx.json) ctx.stdout.write(json);
  else ctx.out(text);
  if (!failed.length) return report.exitCode as ExitCode;
  if (ctx.json) ctx.stderr.write(json);
  else ctx.note(text);
  for (const line of failed) ctx.note(`${line} (the report is above on stderr, in full)`);
  return report.dryRun || report.exitCode === ExitCode.USAGE ? ExitCode.USAGE : ExitCode.PARTIAL;
}

/** `consoles`: the PgBouncer commands as a dry run plans them from the clients connected now. */
async function confirmPlans(ctx: Context, plans: Plan[], consoles: PgbouncerSection[]): Promise<boolean> {
  const [{ renderPlan }, { renderPgbouncer }] = await Promise.all([import('../report/cutoff.js'), import('../report/pgbouncer.js')]);
  for (const plan of plans) ctx.note(renderPlan(plan, ctx.c));
  if (consoles.length)
    ctx.note(
      `${ctx.c.bold('PgBouncer, once NOLOGIN has committed')} ${ctx.c.dim('(planned from the clients connected now; planned again then)')}\n` +
        consoles.map((s) => renderPgbouncer(s, ctx.c)).join('\n\n'),
    );
  const { confirm } = await import('@inquirer/prompts');
  const first = plans[0]!;
  const where = plans.length > 1 ? ` on ${plans.length} nodes` : '';
  try {
    return await confirm(
      {
        message: `Apply playbook ${first.playbook.name} to ${first.roles.map((r) => JSON.stringify(r.name)).join(', ')}${where} now?`,
        default: false,
      },
      { output: process.stderr },
    );
  } catch {
    return false; // Ctrl+C at the prompt
  }
}

/** Re-plan each node whose targets came to administer new roles since planning; true if any did. */
async function includeCreatedSince(
  ctx: Context,
  nodes: PreparedNode[],
  pb: LoadedPlaybook,
  input: PlanInput,
  fleet: boolean,
): Promise<boolean> {
  let changed = false;
  for (const n of nodes) {
    const fresh = await administeredSince(n.client, n.state);
    if (!fresh.length) continue;
    changed = true;
    ctx.note(
      `pgrevoke: ${n.target.name}: made since the plan was shown, included (--include-created): ${fresh.map((r) => JSON.stringify(r)).join(', ')}`,
    );
    Object.assign(n, await prepareNode(n.target, n.client, pb, input, { fleet }));
  }
  return changed;
}

/** A node as its record names it. */
const recordNode = (n: PreparedNode) => ({
  plan: n.plan,
  standby: n.state.server.inRecovery,
  systemIdentifier: n.state.server.systemIdentifier ?? null,
});

export async function run([roles, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as CutoffFlags;
  const names = (roles as string[]).map(String);
  const input: PlanInput = {
    roles: names,
    rotatePassword: Boolean(f.rotatePassword),
    reassignTo: f.reassignTo ?? null,
    hbaFile: f.hbaFile ?? null,
    settleTimeoutS: numberFlag(f.settleTimeout, '--settle-timeout', { min: 0.1, max: 3600 }),
    hiddenGraceMs: numberFlag(f.hiddenGrace, '--hidden-grace', { integer: true, min: 0, max: 3_600_000 }),
    includeCreated: Boolean(f.includeCreated),
  };
  const concurrency = countFlag(f.concurrency, '--concurrency', 16);
  if (!f.dryRun && !f.yes && !ctx.interactive)
    throw usageError(
      'refusing to cut off without confirmation: there is no terminal to ask on, and nothing was changed',
      'pass --yes to apply the playbook, or --dry-run to see what it would do',
    );
  // a path that cannot be written fails now, before anything changes, not after the cutoff
  await checkOutputs([
    { flag: '--report', file: f.report },
    { flag: '--markdown', file: f.markdown },
    { flag: '--audit-log', file: f.auditLog, append: true },
  ]);
  const { nodes: targets, pgbouncers } = await resolveTargets(f, g, 'pgrevoke');
  const fleet = targets.length > 1 || Boolean(f.fleet) || pgbouncers.length > 0;
  if (fleet && f.hbaFile)
    throw usageError(
      '--hba-file names one file: it does not combine with several nodes',
      "each node's own hba_file is used when this host can write it",
    );

  // Time to containment counts from process start: connect while the playbook (YAML + schema) loads.
  trace('cutoff module loaded');
  const [pb, clients] = await Promise.all([
    import('../playbook/load.js')
      .then((m) => m.loadPlaybook(f.playbook))
      .then(
        (p) => p,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => trace('playbook loaded')),
    connectAll(targets, { lockTimeoutMs: SESSION_LOCK_TIMEOUT_MS }).finally(() => trace('session open')),
  ]);
  const closeAll = () => Promise.all(clients.map((c) => (c instanceof Error ? undefined : c.end().catch(() => undefined))));
  try {
    if (pb instanceof Error) throw pb;
    if (!fleet && clients[0] instanceof Error) throw clients[0];
    trace('connected, playbook loaded');
    const prepared = await mapBounded(targets, concurrency, async (t) => {
      const c = clients[targets.indexOf(t)]!;
      if (c instanceof Error) return c;
      return prepareNode(t, c, pb, input, { fleet }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    });
    if (!fleet && prepared[0] instanceof Error) throw prepared[0];
    const live = prepared.filter((p): p is PreparedNode => !(p instanceof Error));
    const unreached = targets.filter((_, i) => prepared[i] instanceof Error && !(prepared[i] instanceof RoleAbsent));
    preflightAll(live, unreached);
    await recordedBefores(live.map(recordNode));
    trace('plan built');
    const who = (n: PreparedNode) => ({
      user: n.operator.user,
      osUser: osUserName(),
      host: os.hostname(),
      superuser: n.operator.superuser,
    });
    const fleetReport = (results: Map<PreparedNode, CutoffReport | Error>, startedAt: string, pgbouncer: PgbouncerSection[] = []) =>
      buildFleetReport({
        targets,
        reached: clients.map((c) => !(c instanceof Error)),
        prepared,
        results,
        pgbouncer,
        roles: names,
        playbook: pb.name,
        dryRun: Boolean(f.dryRun),
        operator: { osUser: osUserName(), host: os.hostname() },
        reasonText: f.reason ?? null,
        startedAt,
      });

    const single = fleet ? null : live[0]!;
    const refuseSingle = async () => {
      if (!single?.refusal) return;
      await writeOutputs(ctx, refusedReport(single.plan, who(single), single.refusal.message, f.reason ?? null, Boolean(f.dryRun)), f);
      throw single.refusal;
    };
    await refuseSingle();
    let runnable = live.filter((n) => !n.refusal);
    if (fleet && runnable.length === 0) {
      const report = fleetReport(new Map(), new Date().toISOString());
      return writeOutputs(ctx, report, f);
    }
    const pgbouncerPlan = (dryRun: boolean) =>
      import('../pgbouncer/section.js').then(({ cutoffSection }) =>
        Promise.all(pgbouncers.map((t) => cutoffSection(t, [...new Set(names)], { killPool: Boolean(f.pgbouncerKillPool), dryRun }))),
      );
    if (
      !f.dryRun &&
      !f.yes &&
      !(await confirmPlans(
        ctx,
        runnable.map((n) => n.plan),
        await pgbouncerPlan(true),
      ))
    ) {
      ctx.note('pgrevoke: not confirmed; nothing was changed');
      return ExitCode.USAGE;
    }
    // the target may have made roles while the plan was read: they join it (the flag asked for them)
    if (f.includeCreated && !f.dryRun && !f.yes && (await includeCreatedSince(ctx, runnable, pb, input, fleet))) {
      preflightAll(live, unreached);
      await recordedBefores(live.map(recordNode));
      await refuseSingle();
      runnable = live.filter((n) => !n.refusal);
    }
    // written ahead: the plan and every before-state are on disk before the first change
    trace('record start');
    const record = f.dryRun
      ? null
      : await openRecord(runnable.map(recordNode), {
          playbook: pb.name,
          operator: { osUser: osUserName(), host: os.hostname() },
          reasonText: f.reason ?? null,
        });

    trace('record written');
    const interrupt = new Interrupt();
    // a step that cannot be recorded stops the run, as a signal would: nothing changes unrecorded
    if (record)
      record.onFailure = (err) => {
        ctx.note(
          `pgrevoke: the cutoff record ${record.file} could not be written (${(err as Error).message}): stopping before the next step`,
        );
        interrupt.trigger('the cutoff record could not be written');
      };
    const onSignal = (sig: NodeJS.Signals) => {
      if (!interrupt.interrupted) ctx.note(`pgrevoke: ${sig}: cancelling the running statement, then writing the report`);
      interrupt.trigger();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const startedAt = new Date().toISOString();
    // PgBouncer once every primary has committed NOLOGIN (a RECONNECT before it would log the role
    // straight back in), while the nodes still settle: a shared-user pool's clients are cut sooner
    let consoles: Promise<PgbouncerSection[]> | null = null;
    const runConsoles = () => (consoles ??= pgbouncerPlan(Boolean(f.dryRun)));
    let results: Map<PreparedNode, CutoffReport | Error>;
    try {
      results = await applyAll(
        runnable,
        concurrency,
        async (n, hooks) => {
          const exec = f.dryRun ? new DryRunExecutor() : new PgExecutor(n.target.params, n.client, interrupt);
          try {
            const report = await apply({
              plan: n.plan,
              state: n.state,
              exec,
              reader: n.client,
              params: n.target.params,
              operator: who(n),
              reasonText: f.reason ?? null,
              interrupt,
              ...hooks,
              onStep: (step, phase) => {
                if (phase === 'end') record?.step(n.plan.node, stepOutcome(step));
                if (fleet) return;
                trace(`${step.action} ${phase}`);
                if (phase === 'start' && !ctx.json)
                  ctx.note(
                    `pgrevoke: ${step.action}${step.role !== null ? ` ${JSON.stringify(step.role)}` : ''}${step.database !== null ? ` in ${JSON.stringify(step.database)}` : ''} ...`,
                  );
              },
            });
            // text mode: one line of progress per node
            if (fleet && !ctx.json) ctx.note(`pgrevoke: ${nodeLine(outcomeOf(n.target, n, report))}`);
            return report;
          } finally {
            await exec.close();
          }
        },
        fleet ? runConsoles : undefined,
      );
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (!fleet) {
      const r = results.get(single!)!;
      if (r instanceof Error) {
        await closeRecord(record, ExitCode.PARTIAL, { error: (r as Error).message }, (l) => ctx.note(l));
        throw r;
      }
      r.record = record?.file ?? null;
      r.exitCode = await closeRecord(record, r.exitCode, r, (l) => ctx.note(l));
      return writeOutputs(ctx, r, f);
    }
    const sections = await runConsoles();
    for (const s of sections) if (!ctx.json) ctx.note(`pgrevoke: ${s.node}: ${s.status}${s.error ? `, ${s.error}` : ''}`);
    const report = fleetReport(results, startedAt, sections);
    report.record = record?.file ?? null;
    report.exitCode = await closeRecord(record, report.exitCode, report, (l) => ctx.note(l));
    return writeOutputs(ctx, report, f);
  } finally {
    await closeAll();
  }
}
