// pgrevoke kill <pid...>: terminate (or --cancel) exactly the named sessions. Thin: pids -> lookup ->
// refuse / confirm -> signal -> audit -> report.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import type { GlobalOptions } from '../cli.js';
import { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { nodeLabel } from '../playbook/plan.js';
import { collectServer } from '../pg/server.js';
import { appendAudit } from '../report/audit.js';
import { renderKillResults, renderKillTargets } from '../report/sessions.js';
import {
  killAuditEntries,
  killDoc,
  killExitCode,
  lookupTargets,
  parsePids,
  refuseNonClient,
  signalTargets,
  type KillAction,
} from '../sessions/kill.js';
import { openSession, osUserName } from './common.js';

interface KillFlags {
  cancel?: boolean;
  waitMs?: string;
  force?: boolean;
  yes?: boolean;
  reason?: string;
  auditLog?: string;
}

function parseWaitMs(text: string | undefined): number {
  if (text === undefined) return 5000;
  const v = Number(text);
  if (!/^\d+$/.test(text.trim()) || v > 3_600_000)
    throw usageError(`invalid --wait-ms: "${text}"`, 'milliseconds from 0 (do not wait) to 3600000');
  return v;
}

export async function run([pidArgs, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as KillFlags;
  const pids = parsePids((pidArgs as unknown[]).map(String));
  const action: KillAction = f.cancel ? 'cancel' : 'terminate';
  const waitMs = parseWaitMs(f.waitMs);
  if (!f.yes && !ctx.interactive)
    throw usageError(
      `refusing to ${action} without confirmation: there is no terminal to ask on, and nothing was signalled`,
      'pass --yes to act without asking',
    );
  if (f.auditLog) {
    // fail before anything is signalled, not after
    try {
      await (await fs.open(f.auditLog, 'a', 0o600)).close();
    } catch (err) {
      throw usageError(`cannot write the audit log ${f.auditLog}: ${(err as Error).message}; nothing was signalled`);
    }
  } else if (f.reason) ctx.note('pgrevoke: note: --reason is recorded only in the audit log (--audit-log FILE)');

  const { params, client, close } = await openSession(g);
  try {
    const server = await collectServer(client);
    const targets = await lookupTargets(client, pids, server.major);
    const refusal = refuseNonClient(targets, Boolean(f.force));
    if (refusal) throw refusal;

    const found = targets.filter((t) => t.found);
    if (found.length && !f.yes) {
      ctx.note(renderKillTargets(found, ctx.c));
      const { confirm } = await import('@inquirer/prompts');
      let ok = false;
      try {
        const what = action === 'cancel' ? 'Cancel the running query of' : 'Terminate';
        ok = await confirm(
          { message: `${what} ${found.length === 1 ? 'this session' : `these ${found.length} sessions`}?`, default: false },
          { output: process.stderr },
        );
      } catch {
        ok = false; // Ctrl+C at the prompt
      }
      if (!ok) {
        ctx.note('pgrevoke: not confirmed; nothing was signalled');
        return ExitCode.USAGE;
      }
    }

    const dbUser = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    const results = await signalTargets(client, targets, { action, waitMs, major: server.major });
    let code = killExitCode(results);

    if (f.auditLog) {
      const entries = killAuditEntries(results, targets, {
        node: nodeLabel(params),
        operator: { dbUser, osUser: osUserName(), host: os.hostname() },
        note: f.reason ?? null,
      });
      try {
        await appendAudit(f.auditLog, entries);
      } catch (err) {
        ctx.note(`pgrevoke: could not write the audit log ${f.auditLog}: ${(err as Error).message}`);
        if (code === ExitCode.OK || code === ExitCode.EXPOSED) code = ExitCode.PARTIAL;
      }
    }

    const { done, failed } = renderKillResults(results, ctx.c);
    if (ctx.json) ctx.printJson(killDoc(results));
    else if (done.length) ctx.out(done.join('\n'));
    for (const line of failed) ctx.note(`pgrevoke: error: ${line}`);
    if (results.some((r) => r.status === 'denied'))
      ctx.note(
        `hint: connect as a superuser, or GRANT pg_signal_backend TO ${JSON.stringify(dbUser)} (which still cannot signal superusers' backends)`,
      );
    return code;
  } finally {
    await close();
  }
}
