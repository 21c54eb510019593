// K and C in the live view: the selected session through `pgrevoke kill`'s own steps (look the pid up,
// refuse a server process, signal it, one audit line), so that the view behaves as `kill PID` does.
import { Chalk } from 'chalk';
import type { Client } from '../../pg/connect.js';
import { appendAudit } from '../../record/audit.js';
import { renderKillResults } from '../../report/sessions.js';
import { killAuditEntries, lookupTargets, refuseNonClient, signalTargets, type KillAction, type KillTarget } from '../kill.js';
import { describeRow, type WatchRow } from './state.js';

/** `pgrevoke kill`'s default --wait-ms: how long a terminated backend is given to exit. */
const WAIT_MS = 5000;

/** The bottom line is plain text (render.ts marks control characters), so results are rendered without color. */
const PLAIN = new Chalk({ level: 0 });

export interface SignalContext {
  /** A connection to the row's node. */
  client: Client;
  major: number;
  /** Several nodes: pids are named NODE:PID, as kill names them. */
  qualify: boolean;
  auditLog?: string;
  /** The OS side of the audit line's operator; the database user is asked of the connection. */
  who: { osUser: string; host: string };
}

export interface SignalOutcome {
  /** One line for the bottom of the view: what was done, or why not. */
  message: string;
  /** The audit line could not be written: the view then exits 3, as kill does. */
  auditFailed: boolean;
}

/** A pid now held by another session than the one confirmed (the first ended and its pid was reused). */
function reused(row: WatchRow, t: KillTarget): boolean {
  return t.found && row.backendStart !== null && Boolean(t.backendStart) && t.backendStart !== row.backendStart;
}

export async function signalRow(row: WatchRow, action: KillAction, x: SignalContext): Promise<SignalOutcome> {
  const targets = await lookupTargets(x.client, [row.pid], x.major, { node: row.node, qualify: x.qualify });
  const refusal = refuseNonClient(targets, false);
  if (refusal) return { message: `error: ${refusal.message}`, auditFailed: false };
  const t = targets[0]!;
  if (reused(row, t))
    return {
      message: `error: pid ${describeRow(row, x.qualify)} ended and its pid now belongs to another session (${t.user ?? 'role unknown'}); nothing was signalled`,
      auditFailed: false,
    };
  const results = await signalTargets(x.client, targets, { action, waitMs: WAIT_MS, major: x.major });
  const { done, failed } = renderKillResults(results, PLAIN);
  const message = done[0] ?? `error: ${failed[0] ?? `pid ${t.ref}: failed`}`;
  if (!x.auditLog) return { message, auditFailed: false };
  try {
    const dbUser = (await x.client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    const notice = await appendAudit(x.auditLog, killAuditEntries(results, targets, { operator: { dbUser, ...x.who } }));
    return { message: notice ? `${message}; ${notice}` : message, auditFailed: false };
  } catch (err) {
    return { message: `${message}; error: could not write --audit-log ${x.auditLog}: ${(err as Error).message}`, auditFailed: true };
  }
}
