// pgrevoke restore <role> --from REPORT: undo a cutoff after a false alarm (LOGIN, connection limit,
// stripped attributes, the HBA block, a reload). --dry-run shows exactly what would run.
import { readFile } from 'node:fs/promises';
import type { GlobalOptions } from '../cli.js';
import { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { isBlockingHbaError } from '../hba/file-errors.js';
import { replaceFile, restoreFile } from '../playbook/hba-file.js';
import { HBA_ERRORS_SQL } from '../playbook/plan.js';
import { planRestore, readReport } from '../playbook/restore.js';
import { nodeRole } from '../pg/nodes.js';
import { findRole } from '../pg/roles.js';
import { redact } from '../pg/redact.js';
import { openSession } from './common.js';

interface RestoreFlags {
  from?: string;
  node?: string;
  dryRun?: boolean;
  yes?: boolean;
}

interface RestoreStep {
  action: 'alter_role' | 'hba_remove' | 'reload';
  sql: string | null;
  file: string | null;
  status: 'planned' | 'done' | 'failed' | 'skipped';
  detail: string | null;
}

export async function run([role, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as RestoreFlags;
  const name = String(role);
  if (!f.from) throw usageError('restore needs --from REPORT', 'the JSON report that cutoff --report wrote');
  const { source: report, standby } = readReport(f.from, f.node);
  if (!f.dryRun && !f.yes && !ctx.interactive)
    throw usageError(
      'refusing to restore without confirmation: there is no terminal to ask on, and nothing was changed',
      'pass --yes, or --dry-run',
    );
  const { client, close } = await openSession(g);
  try {
    // a standby's section changes only its HBA; applied to the wrong kind of node it would do the wrong half
    const connected = await nodeRole(client);
    const expected = standby ? 'standby' : 'primary';
    if (connected !== expected)
      throw usageError(
        `the report's section ${f.node ? `for ${f.node} ` : ''}is of a ${expected}, but the server connected to is a ${connected}; nothing was changed`,
        `connect to the node the section is for (--dsn), or pass the --node of ${connected === 'standby' ? 'a standby' : 'the primary'}`,
      );
    const current = await findRole(client, name);
    const hbaText = report.hba?.file ? await readFile(report.hba.file, 'utf8').catch(() => null) : null;
    const plan = planRestore(report, name, current?.oid ?? null, hbaText, { standby });
    const steps: RestoreStep[] = [
      ...(plan.alter ? [{ action: 'alter_role', sql: plan.alter, file: null, status: 'planned', detail: null } as RestoreStep] : []),
      ...(plan.hba
        ? ([
            {
              action: 'hba_remove',
              sql: null,
              file: plan.hba.file,
              status: 'planned',
              detail: `remove the pgrevoke block for ${JSON.stringify(name)}`,
            },
            {
              action: 'reload',
              sql: plan.reload,
              file: null,
              status: 'planned',
              detail: 'then check pg_hba_file_rules for error rows',
            },
          ] as RestoreStep[])
        : []),
    ];
    const show = () => [
      ...steps.map((s) => `  ${s.action}: ${s.sql ?? `edit ${s.file}`}${s.detail ? `  -- ${s.detail}` : ''}`),
      ...plan.notes.map((n) => `  note: ${n}`),
    ];
    if (!f.dryRun && !f.yes) {
      ctx.note(`Restore ${JSON.stringify(name)} (oid ${plan.oid}) from ${f.from}:\n${show().join('\n')}`);
      const { confirm } = await import('@inquirer/prompts');
      const ok = await confirm({ message: 'Apply?', default: false }, { output: process.stderr }).catch(() => false);
      if (!ok) {
        ctx.note('pgrevoke: not confirmed; nothing was changed');
        return ExitCode.USAGE;
      }
    }
    let exit: ExitCode = ExitCode.OK;
    if (!f.dryRun) {
      const fail = (s: RestoreStep, err: unknown) => {
        s.status = 'failed';
        s.detail = redact((err as Error).message);
        exit = ExitCode.PARTIAL;
      };
      const alter = steps.find((s) => s.action === 'alter_role');
      if (alter)
        try {
          await client.query(alter.sql!);
          alter.status = 'done';
        } catch (err) {
          fail(alter, err);
        }
      const edit = steps.find((s) => s.action === 'hba_remove');
      const reload = steps.find((s) => s.action === 'reload');
      if (plan.hba && edit && reload) {
        let backup: string | null = null;
        try {
          backup = (await replaceFile(plan.hba.file, plan.hba.content)).backup;
          edit.status = 'done';
          edit.detail = `block removed; backup ${backup}`;
          await client.query(reload.sql!);
          const errors = (await client.query<{ line_number: number; error: string }>(HBA_ERRORS_SQL)).rows.filter((r) =>
            isBlockingHbaError(r.error),
          );
          if (errors.length) {
            await restoreFile(plan.hba.file, backup);
            await client.query(reload.sql!);
            throw new Error(
              `pg_hba_file_rules shows errors (${errors.map((e) => `line ${e.line_number}: ${e.error}`).join('; ')}); the backup was put back and reloaded`,
            );
          }
          reload.status = 'done';
        } catch (err) {
          fail(edit.status === 'done' ? reload : edit, err);
        }
      }
    }
    const doc = {
      schemaVersion: 1,
      role: name,
      oid: plan.oid,
      dryRun: Boolean(f.dryRun),
      from: f.from,
      steps,
      notes: plan.notes,
      exitCode: exit,
    };
    if (ctx.json) ctx.printJson(doc);
    else {
      ctx.out(`${f.dryRun ? 'Would restore' : 'Restore of'} ${JSON.stringify(name)} (oid ${plan.oid}) from ${f.from}:`);
      for (const s of steps)
        ctx.out(
          `${(f.dryRun ? 'PLANNED' : s.status.toUpperCase()).padEnd(8)} ${s.action}: ${s.sql ?? s.file}${s.detail ? `\n         ${s.detail}` : ''}`,
        );
      for (const n of plan.notes) ctx.out(`note: ${n}`);
    }
    return exit;
  } finally {
    await close();
  }
}
