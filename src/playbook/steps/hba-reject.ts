// hba_reject: a marked reject block for each target at the top of pg_hba.conf (first match wins),
// written under the HBA locks from the file as it is now, reloaded and checked in
// pg_hba_file_rules; put back from the backup when the server shows error rows.
import { readFile } from 'node:fs/promises';
import type { z as Z } from 'zod';
import { isBlockingHbaError } from '../../hba/file-errors.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import { confirmEdit, hbaQuote, withBlocks, withoutBlock } from '../hba-file.js';
import { withHbaLock } from '../hba-lock.js';
import { num, type Run } from '../run.js';
import { HBA_ERRORS_SQL, HBA_OURS_SQL, RELOAD_CONF } from '../sql.js';
import { StepSkipped, type PlanContext, type RestoreContext, type RestorePart, type StepKind } from './kind.js';

const fields = (_z: typeof Z) => ({});

/** How the file edit shows in plans and logs (the lines themselves carry a time: they go in the detail). */
export function hbaNote(roles: string[], file: string): string {
  return `-- prepend reject lines for ${roles.map(hbaQuote).join(', ')} to ${file}`;
}

// pg_reload_conf() signals every backend; the signal cuts short the sleep of one in the
// post-authentication window, which then runs as the role before it can be terminated.
function order(steps: readonly { action: string }[], at: number): string | null {
  const settleAt = steps.findIndex((s) => s.action === 'settle');
  const follow = settleAt >= 0 ? settleAt : steps.findIndex((s) => s.action === 'contain');
  if (follow < 0 || at > follow) return null;
  return `"hba_reject" must come after "${settleAt >= 0 ? 'settle' : 'contain'}": the configuration reload wakes backends sleeping in the post-authentication window, which would then run as the role`;
}

function planHba(ctx: PlanContext): void {
  const { hba } = ctx.state;
  const file = hba.file ?? undefined;
  const names = ctx.targets.map((t) => t.name);
  if (hba.skip) {
    ctx.add({ action: 'hba_reject', database: null, role: null, sql: [], reason: 'stop new logins at pg_hba.conf', skip: hba.skip, file });
    return;
  }
  const writable = names.filter((n) => !hba.perRole[n] && !hba.present.includes(n));
  for (const n of names.filter((x) => hba.perRole[x])) ctx.warn(`HBA step skipped for ${JSON.stringify(n)}: ${hba.perRole[n]}`);
  ctx.add({
    action: 'hba_reject',
    database: null,
    role: null,
    file,
    sql: [hbaNote(writable, file!), RELOAD_CONF, HBA_ERRORS_SQL, HBA_OURS_SQL],
    reason: 'stop new logins at pg_hba.conf (first match wins: the block goes at the top); checked in pg_hba_file_rules, restored on error',
  });
}

/** The roles whose block this run writes: not inexpressible in the file, not already there. */
function blockRoles(run: Run): string[] {
  const { hba } = run.state;
  return run.targets.map((t) => t.name).filter((r) => !hba.perRole[r] && !hba.present.includes(r));
}

/** Read, modify, write, reload and check, under the HBA locks; a link's target is what is written. */
async function edit(run: Run, step: ReportStep, file: string, target: string, roles: string[]): Promise<string> {
  const { exec, reader } = run;
  const where = target === file ? file : `${target} (${file} links to it; the link is kept)`;
  const before = await reader.query<{ line_number: number; error: string }>(HBA_ERRORS_SQL);
  const blockingBefore = before.rows.filter((r) => isBlockingHbaError(r.error));
  if (blockingBefore.length)
    throw new StepSkipped(
      `${file} already has error rows (${blockingBefore.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}): a reload would be refused as a whole, so the reject block could not take effect; fix the file first`,
    );
  // from the file as it is now: another operator's edit made while we waited is kept
  const next = withBlocks(await readFile(target, 'utf8'), roles, run.clock());
  if (!next) throw new StepSkipped(`a pgrevoke reject block for each target is already in ${file}`);
  const lines = next.content.split('\n').slice(0, next.added.length * 4);
  const written = await exec.writeFile(step, target, next.content, hbaNote(roles, file));
  run.changed = true;
  run.report.hba = { file, written: target, backup: written?.backup ?? null, lines };
  await exec.run(step, RELOAD_CONF);
  const errors = (await exec.run(step, HBA_ERRORS_SQL))[0]?.rows ?? [];
  const blocking = errors.filter((r) => isBlockingHbaError(String(r.error)));
  if (blocking.length) {
    const text = blocking.map((r) => `line ${String(r.line_number)}: ${String(r.error)}`).join('; ');
    if (written) {
      await exec.restoreFile(step, target, written.backup, `-- restore ${target} from ${written.backup}`);
      await exec.run(step, RELOAD_CONF);
    }
    throw new Error(`pg_hba_file_rules shows error rows after the edit (${text}); the backup was restored and the configuration reloaded`);
  }
  const ours = (await exec.run(step, HBA_OURS_SQL, { values: [roles] }))[0]?.rows ?? [];
  const missing = roles.filter((r) => !ours.some((o) => (o.user_name as string[] | null)?.includes(r)));
  if (missing.length)
    throw new Error(
      `the server's pg_hba_file_rules does not show the reject lines for ${missing.map((m) => JSON.stringify(m)).join(', ')}: is ${file} the server's hba_file?`,
    );
  await confirmEdit(target, { added: next.blocks });
  const lineNos = ours.map((o) => num(o.line_number));
  return `prepended ${lines.length} line(s) to ${where} (reject rules now at line(s) ${lineNos.join(', ')}); backup ${written?.backup ?? '-'}; reloaded; no error rows`;
}

async function applyHba(run: Run, step: ReportStep): Promise<string> {
  const file = step.file!;
  const roles = blockRoles(run);
  if (run.dry) {
    await run.exec.writeFile(step, file, '', hbaNote(roles, file));
    await run.exec.run(step, RELOAD_CONF);
    await run.exec.run(step, HBA_ERRORS_SQL);
    await run.exec.run(step, HBA_OURS_SQL, { values: [roles] });
    return `would prepend a reject block for ${roles.length} role(s) to ${file}, reload, and check pg_hba_file_rules`;
  }
  const open = [...run.suspects.values()].filter((x) => x.resolution === 'open' || x.resolution === 'unresolved');
  if (open.length)
    throw new StepSkipped(
      `hidden backend(s) ${open.map((x) => x.pid).join(', ')} are still unresolved: a configuration reload signals every backend and would wake them, and they would run as the role at once`,
    );
  return withHbaLock({ params: run.deps.params, serverLock: run.deps.hbaServerLock }, file, (target) =>
    edit(run, step, file, target, roles),
  );
}

/** The role's block comes out of the recorded file (with a reload), if it is still there. */
function inverse(ctx: RestoreContext): RestorePart {
  const file = ctx.report.hba?.file;
  if (!file) return {};
  const next = ctx.hbaContent === null ? null : withoutBlock(ctx.hbaContent, ctx.role);
  if (next !== null) return { hba: { file, content: next } };
  return { notes: [`no pgrevoke block for ${JSON.stringify(ctx.role)} in ${file} (already removed, or edited by hand)`] };
}

export const hbaRejectStep = {
  action: 'hba_reject',
  fields,
  order,
  plan: planHba,
  apply: applyHba,
  inverse,
} satisfies StepKind<typeof fields>;
