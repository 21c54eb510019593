// pgrevoke cutoff <role...>: the containment playbook. Thin: options -> plan -> confirm -> apply -> report.
import os from 'node:os';
import type { GlobalOptions } from '../cli.js';
import { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { apply, Interrupt, refusedReport, type CutoffReport } from '../playbook/apply.js';
import { DryRunExecutor, PgExecutor } from '../playbook/executor.js';
import type { LoadedPlaybook } from '../playbook/load.js';
import { buildPlan, collectPlanState, preflight, type PlanInput } from '../playbook/plan.js';
import { trace } from '../util/trace.js';
import { openSession, osUserName, type Session } from './common.js';

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
}

function number(text: string | undefined, flag: string, opts: { integer?: boolean; min: number; max: number }): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isFinite(v) || v < opts.min || v > opts.max || (opts.integer && !Number.isInteger(v)))
    throw usageError(`invalid ${flag}: "${text}"`, `a${opts.integer ? 'n integer' : ' number'} from ${opts.min} to ${opts.max}`);
  return v;
}

async function writeOutputs(ctx: Context, report: CutoffReport, f: CutoffFlags): Promise<void> {
  // renderers and the audit writer load after containment, off the critical path
  const [{ appendAudit }, { auditEntries, renderCutoff, renderMarkdown, writePrivate }] = await Promise.all([
    import('../report/audit.js'),
    import('../report/cutoff.js'),
  ]);
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      problems.push(`could not write the ${what}: ${(err as Error).message}`);
    }
  };
  if (f.report) await attempt(`report ${f.report}`, () => writePrivate(f.report!, JSON.stringify(report, null, 2) + '\n'));
  if (f.markdown) await attempt(`markdown ${f.markdown}`, () => writePrivate(f.markdown!, renderMarkdown(report)));
  if (f.auditLog && !report.dryRun)
    await attempt(`audit log ${f.auditLog}`, () => appendAudit(f.auditLog!, auditEntries(report, f.reason)));
  if (ctx.json) ctx.printJson(report);
  else ctx.out(renderCutoff(report, ctx.c));
  for (const p of problems) ctx.note(`pgrevoke: ${p}`);
}

export async function run([roles, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as CutoffFlags;
  const names = (roles as string[]).map(String);
  const input: PlanInput = {
    roles: names,
    rotatePassword: Boolean(f.rotatePassword),
    reassignTo: f.reassignTo ?? null,
    hbaFile: f.hbaFile ?? null,
    settleTimeoutS: number(f.settleTimeout, '--settle-timeout', { min: 0.1, max: 3600 }),
    hiddenGraceMs: number(f.hiddenGrace, '--hidden-grace', { integer: true, min: 0, max: 3_600_000 }),
  };
  if (!f.dryRun && !f.yes && !ctx.interactive)
    throw usageError(
      'refusing to cut off without confirmation: there is no terminal to ask on, and nothing was changed',
      'pass --yes to apply the playbook, or --dry-run to see what it would do',
    );

  // Time to containment counts from process start: connect while the playbook (YAML + schema) loads.
  trace('cutoff module loaded');
  const [pb, conn] = await Promise.allSettled([
    import('../playbook/load.js').then((m) => m.loadPlaybook(f.playbook)).finally(() => trace('playbook loaded')),
    openSession(g).finally(() => trace('session open')),
  ]);
  if (pb.status === 'rejected' || conn.status === 'rejected') {
    if (conn.status === 'fulfilled') await conn.value.close();
    throw pb.status === 'rejected' ? pb.reason : (conn as PromiseRejectedResult).reason;
  }
  const playbook: LoadedPlaybook = pb.value;
  trace('connected, playbook loaded');
  const { params, client, close }: Session = conn.value;
  try {
    const { state, operator } = await collectPlanState(params, client, input);
    const plan = buildPlan(playbook, state, operator, params, input);
    trace('plan built');
    const who = { user: operator.user, osUser: osUserName(), host: os.hostname(), superuser: operator.superuser };

    const refusal = preflight(plan, state);
    if (refusal) {
      const report = refusedReport(plan, who, refusal.message, f.reason ?? null, Boolean(f.dryRun));
      await writeOutputs(ctx, report, f);
      throw refusal;
    }

    if (!f.dryRun && !f.yes) {
      const { renderPlan } = await import('../report/cutoff.js');
      ctx.note(renderPlan(plan, ctx.c));
      const { confirm } = await import('@inquirer/prompts');
      let ok = false;
      try {
        ok = await confirm(
          {
            message: `Apply playbook ${plan.playbook.name} to ${plan.roles.map((r) => JSON.stringify(r.name)).join(', ')} now?`,
            default: false,
          },
          { output: process.stderr },
        );
      } catch {
        ok = false; // Ctrl+C at the prompt
      }
      if (!ok) {
        ctx.note('pgrevoke: not confirmed; nothing was changed');
        return ExitCode.USAGE;
      }
    }

    const exec = f.dryRun ? new DryRunExecutor() : new PgExecutor(params, client);
    const interrupt = new Interrupt();
    const onSignal = (sig: NodeJS.Signals) => {
      if (!interrupt.interrupted) ctx.note(`pgrevoke: ${sig}: finishing the current statement, then writing the report`);
      interrupt.trigger();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let report: CutoffReport;
    try {
      report = await apply({
        plan,
        state,
        exec,
        reader: client,
        params,
        operator: who,
        reasonText: f.reason ?? null,
        interrupt,
        onStep: (step, phase) => {
          trace(`${step.action} ${phase}`);
          if (phase === 'start' && !ctx.json)
            ctx.note(
              `pgrevoke: ${step.action}${step.role !== null ? ` ${JSON.stringify(step.role)}` : ''}${step.database !== null ? ` in ${JSON.stringify(step.database)}` : ''} ...`,
            );
        },
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await exec.close();
    }
    await writeOutputs(ctx, report, f);
    return report.exitCode as ExitCode;
  } finally {
    await close();
  }
}
