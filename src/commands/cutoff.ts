// pgrevoke cutoff <role...>: the containment playbook. Thin: options in, runCutoff (one node or a
// fleet, the same call), the outputs written, the exit code out.
import os from 'node:os';
import { Context, type GlobalOptions, type Progress } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { resolveTargets } from '../fleet/targets.js';
import { runCutoff, type CutoffHooks } from '../playbook/cutoff.js';
import type { ConfirmFacts } from '../playbook/confirm-facts.js';
import type { Plan, PlanInput } from '../playbook/model.js';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import { checkOutputs } from '../record/safe-write.js';
import { countFlag, numberFlag } from '../util/flags.js';
import { writeOutputs } from './cutoff-outputs.js';
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
  showSql?: boolean;
}

/** Every plan with each step's SQL, then the PgBouncer commands: what `s` and --show-sql print. */
async function fullPlans(ctx: Context, plans: Plan[], consoles: PgbouncerSection[]): Promise<string> {
  const [{ renderPlan }, { renderPgbouncer }] = await Promise.all([import('../report/cutoff.js'), import('../report/pgbouncer.js')]);
  const out = plans.map((plan) => renderPlan(plan, ctx.c));
  if (consoles.length)
    out.push(
      `${ctx.c.bold('PgBouncer, once NOLOGIN has committed')} ${ctx.c.dim('(planned from the clients connected now; planned again then)')}\n` +
        consoles.map((s) => renderPgbouncer(s, ctx.c)).join('\n\n'),
    );
  return out.join('\n');
}

// The question's choices, shown under it (inquirer's expand prompt: a key, then Enter).
const CHOICES = [
  { key: 'y', name: 'yes, apply it now', value: 'yes' },
  { key: 'n', name: 'no, change nothing', value: 'no' },
  { key: 's', name: 'show the full SQL, then ask again', value: 'sql' },
] as const;

/**
 * The summary (per node what will happen, fitted to the terminal with the question below it), then
 * the question; `s` prints the full plans and asks again. --show-sql prints them before the summary.
 * `consoles`: the PgBouncer commands as planned from the clients connected now.
 */
async function confirmPlans(
  ctx: Context,
  showSql: boolean,
  plans: Plan[],
  consoles: PgbouncerSection[],
  facts: ConfirmFacts[],
): Promise<boolean> {
  const [{ renderPlanSummary }, { shownName }, { expand }, { default: stringWidth }] = await Promise.all([
    import('../report/plan-summary.js'),
    import('../report/format.js'),
    import('@inquirer/prompts'),
    import('string-width'),
  ]);
  if (showSql) ctx.note(await fullPlans(ctx, plans, consoles));
  const first = plans[0]!;
  const where = plans.length > 1 ? ` on ${plans.length} nodes` : '';
  const message = `Apply playbook ${first.playbook.name} to ${first.roles.map((r) => shownName(r.name)).join(', ')}${where} now? (y/N)`;
  // a pty that reports no size gets the size of the smallest common terminal
  const columns = ctx.stderrColumns || 80;
  const rows = (ctx.stderr as { rows?: number }).rows || 24;
  // in screen columns: a wide or emoji role name takes two each
  const promptLines = Math.ceil((stringWidth(message) + 3) / columns) + CHOICES.length;
  const nodes = plans.map((plan, i) => ({ plan, facts: facts[i]! }));
  ctx.note(renderPlanSummary(nodes, consoles, ctx.c, { columns, lines: rows - promptLines }));
  for (;;) {
    let answer: (typeof CHOICES)[number]['value'];
    try {
      answer = await expand({ message, choices: CHOICES, default: 'n', expanded: true }, { output: process.stderr });
    } catch {
      return false; // Ctrl+C at the prompt
    }
    if (answer !== 'sql') return answer === 'yes';
    ctx.note(await fullPlans(ctx, plans, consoles));
  }
}

/**
 * On a terminal, each step of one node is a spinner while it runs and then its one result line
 * (what the text report then leaves out). Events are queued: the spinner library may still be
 * loading when the first step starts, and it must not hold containment up.
 */
function liveSteps(ctx: Context): { onStep: NonNullable<CutoffHooks['steps']>; settled: () => Promise<void> } {
  ctx.preloadProgress();
  let chain: Promise<void> = Promise.resolve();
  let spinner: Progress | null = null;
  const render = import('../report/cutoff.js');
  return {
    onStep: (step, phase) => {
      // the step as it is now: later events change the same object
      const snapshot = { ...step };
      chain = chain.then(async () => {
        const { stepResult, stepRunning, stepSymbol } = await render;
        if (phase === 'start') spinner = await ctx.progress(stepRunning(snapshot));
        else spinner?.persist(stepSymbol(snapshot.status, ctx.c), stepResult(snapshot, ctx.c, ctx.stderrColumns || 80));
        if (phase === 'end') spinner = null;
      });
    },
    settled: async () => {
      await chain;
      spinner?.stop();
    },
  };
}

/** What the plan is made from, as the flags say it (a number out of range is exit 2). */
function planInput(roles: string[], f: CutoffFlags): PlanInput {
  return {
    roles,
    rotatePassword: Boolean(f.rotatePassword),
    reassignTo: f.reassignTo ?? null,
    hbaFile: f.hbaFile ?? null,
    settleTimeoutS: numberFlag(f.settleTimeout, '--settle-timeout', { min: 0.1, max: 3600 }),
    hiddenGraceMs: numberFlag(f.hiddenGrace, '--hidden-grace', { integer: true, min: 0, max: 3_600_000 }),
    includeCreated: Boolean(f.includeCreated),
  };
}

export async function run([roles, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as CutoffFlags;
  const input = planInput((roles as string[]).map(String), f);
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
  const note = (line: string) => ctx.note(line);
  // the dry run keeps its plain lines and its full report (every step with its SQL)
  const live = ctx.spins && !f.dryRun && !fleet ? liveSteps(ctx) : null;
  const hooks: CutoffHooks = {
    confirm: f.dryRun || f.yes ? null : (plans, consoles, facts) => confirmPlans(ctx, Boolean(f.showSql), plans, consoles, facts),
    note,
    progress: ctx.json ? null : note,
    steps: live?.onStep ?? null,
  };
  const outcome = await runCutoff(
    {
      input,
      playbook: f.playbook,
      targets,
      pgbouncers,
      fleet,
      dryRun: Boolean(f.dryRun),
      reason: f.reason ?? null,
      killPool: Boolean(f.pgbouncerKillPool),
      concurrency,
      operator: { osUser: osUserName(), host: os.hostname() },
    },
    hooks,
  ).finally(() => live?.settled());
  if (outcome.kind === 'declined') {
    ctx.note('pgrevoke: not confirmed; nothing was changed');
    return ExitCode.USAGE;
  }
  // steps shown live on the terminal the report goes to are not shown again
  const code = await writeOutputs(ctx, outcome.report, f, { stepsShown: live !== null && Boolean(ctx.stdout.isTTY) });
  // a node that must not be changed: its refused report is written, and the refusal is the error
  if (outcome.kind === 'refused') throw outcome.refusal;
  return code;
}
