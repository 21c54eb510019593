// What a failed tick means for its node (failures.ts tells the kinds apart): a lost connection is
// handed back to the loop, which reconnects; a lock timeout goes to unblock; anything else leaves
// the node blind, said once then every REPEAT_MS, and past --max-blind ends the guard (exit 3).
import { ExitCode, PgrevokeError } from '../errors.js';
import { redact } from '../pg/redact.js';
import { errText, isConnectionLoss, isLockTimeout, REPEAT_MS } from './failures.js';
import { DEFAULT_MAX_BLIND_MS } from './options.js';
import type { GuardContext, NodeState } from './state.js';
import { unblock } from './unblock-actions.js';

/**
 * After a failed tick: the error that lost the connection (the caller reconnects), or null when
 * still connected, which keeps the connection, since a new login may be impossible (a full
 * server, a locked pg_authid). Throws past --max-blind.
 */
export async function afterFailedTick(ctx: GuardContext, n: NodeState, err: unknown): Promise<unknown> {
  if (n.lostWith || isConnectionLoss(err)) return n.lostWith ?? err;
  if (!isLockTimeout(err)) {
    blindTick(ctx, n, err);
    return null;
  }
  try {
    await unblock(ctx, n);
  } catch (e) {
    if (n.lostWith || isConnectionLoss(e)) return n.lostWith ?? e;
    // blocked too (a role the guard never cached), or failing: said, and retried at the next tick
    if (isLockTimeout(e))
      ctx.emit({ type: 'error', node: n.node.name, message: `tick blocked by a lock, and so is finding its holder: ${errText(e)}` });
    else blindTick(ctx, n, e);
  }
  return null;
}

/** A tick that failed while connected: say so (once, then every REPEAT_MS), and past --max-blind end the guard. */
function blindTick(ctx: GuardContext, n: NodeState, err: unknown): void {
  const now = Date.now();
  const error = errText(err);
  const sqlstate = (err as { code?: string }).code;
  const maxMs = ctx.cfg.maxBlindMs ?? DEFAULT_MAX_BLIND_MS;
  const b = (n.blind ??= { sinceMs: now, error, sqlstate, saidMs: 0 });
  const forS = ((now - b.sinceMs) / 1000).toFixed(1);
  if (maxMs > 0 && now - b.sinceMs >= maxMs)
    throw new PgrevokeError(
      `${n.node.name}: blind for ${forS} s (--max-blind ${maxMs / 1000}): every tick fails: ${redact((err as Error).message ?? String(err))}`,
      {
        exitCode: ExitCode.PARTIAL,
        sqlstate,
        hint: "fix what makes the tick fail (often a privilege of the guard's role); a supervisor restarts the guard on exit 3",
        cause: err,
      },
    );
  if (b.error === error && now - b.saidMs < REPEAT_MS) return;
  const first = b.saidMs === 0 || b.error !== error;
  b.error = error;
  b.saidMs = now;
  const limit = maxMs > 0 ? `exits 3 after ${maxMs / 1000} s of this (--max-blind)` : 'never exits for it (--max-blind 0)';
  ctx.emit({
    type: 'error',
    node: n.node.name,
    message: first
      ? `tick failed (connection kept, retrying every ${ctx.cfg.intervalMs} ms; ${limit}): ${error}`
      : `tick still failing after ${forS} s (${limit}): ${error}`,
  });
}

/** A tick that worked: a node that was blind or blocked is said to be well again. */
export function sawTick(ctx: GuardContext, n: NodeState): void {
  if (n.blind)
    ctx.emit({
      type: 'info',
      node: n.node.name,
      message: `tick works again after ${((Date.now() - n.blind.sinceMs) / 1000).toFixed(1)} s`,
    });
  else if (n.blocked) ctx.emit({ type: 'info', node: n.node.name, message: 'tick works again: no longer blocked by a lock' });
  n.blind = null;
  n.blocked = null;
}
