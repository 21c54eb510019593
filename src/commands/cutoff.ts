// pgrevoke cutoff <role...>: the containment playbook. Thin: options in, runCutoff (one node or a
// fleet, the same call), the outputs written, the exit code out.
import os from 'node:os';
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { resolveTargets } from '../fleet/targets.js';
import { runCutoff, type CutoffHooks } from '../playbook/cutoff.js';
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
  const hooks: CutoffHooks = {
    confirm: f.dryRun || f.yes ? null : (plans, consoles) => confirmPlans(ctx, plans, consoles),
    note,
    progress: ctx.json ? null : note,
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
  );
  if (outcome.kind === 'declined') {
    ctx.note('pgrevoke: not confirmed; nothing was changed');
    return ExitCode.USAGE;
  }
  const code = await writeOutputs(ctx, outcome.report, f);
  // a node that must not be changed: its refused report is written, and the refusal is the error
  if (outcome.kind === 'refused') throw outcome.refusal;
  return code;
}
