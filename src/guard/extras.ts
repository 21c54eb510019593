// What the guard runs on a node after each tick, beside the tick itself: --on-membership-revoked
// (membership-holdover.ts) and the failed-login lockout (lockout-hook.ts). Its state per node lives here, keyed by the node's state, so
// that neither the tick nor NodeState has to know it. Never throws: a failed pass is said (once
// per distinct error) and the snapshot kept, so the next pass sees the same change and tries again.
import { errText } from './failures.js';
import { LockoutHook } from './lockout-hook.js';
import { endMembershipHoldovers } from './membership-holdover.js';
import type { MembershipSnapshot } from './membership.js';
import { SERVER_MAJOR } from './membership-sql.js';
import { operatorOf, type GuardContext, type NodeState } from './state.js';
import type { GuardClient } from './types.js';

interface ExtraNode {
  /** The connection `major` was read on (a reconnect reads it again: the server may have been upgraded). */
  client: GuardClient | null;
  major: number;
  /** pg_auth_members as last seen; kept across reconnects, so a REVOKE while disconnected is still seen. */
  snapshot: MembershipSnapshot | null;
  /** The last error said, so that a pass failing the same way each tick is said once. */
  failing: string | null;
}

export class GuardExtras {
  private readonly nodes = new Map<NodeState, ExtraNode>();
  private readonly lockout: LockoutHook | null;

  constructor(private readonly ctx: GuardContext) {
    this.lockout = ctx.cfg.lockout ? new LockoutHook(ctx, ctx.cfg.lockout) : null;
  }

  /** After a tick on a connected node. */
  async afterTick(n: NodeState): Promise<void> {
    await this.lockout?.afterTick(n);
    await this.membership(n);
  }

  private async membership(n: NodeState): Promise<void> {
    const { ctx } = this;
    const client = n.client;
    if (!ctx.cfg.onMembershipRevoked || !client) return;
    let x = this.nodes.get(n);
    if (!x) this.nodes.set(n, (x = { client: null, major: 0, snapshot: null, failing: null }));
    try {
      if (x.client !== client) {
        const { rows } = await client.query<{ major: number }>({ ...SERVER_MAJOR, query_timeout: ctx.queryTimeoutMs });
        x.major = rows[0]!.major;
        x.client = client;
      }
      const r = await endMembershipHoldovers(client, x.snapshot, {
        major: x.major,
        dryRun: ctx.cfg.dryRun,
        exclude: ctx.cfg.exclude,
        node: n.node.name,
        operator: operatorOf(ctx, n),
        queryTimeoutMs: ctx.queryTimeoutMs,
      });
      x.snapshot = r.snapshot;
      x.failing = null;
      for (const kill of r.kills) ctx.emit({ type: 'kill', kill });
      for (const d of r.denied) ctx.emit({ type: 'denied', kill: d.kill, message: d.message });
      ctx.audit.write(r.audit);
    } catch (err) {
      const text = errText(err);
      if (text !== x.failing) ctx.emit({ type: 'error', node: n.node.name, message: `--on-membership-revoked pass failed: ${text}` });
      x.failing = text;
    }
  }

  /** The node's loop ended: its state goes with it. */
  forget(n: NodeState): void {
    this.nodes.delete(n);
    this.lockout?.forget(n);
  }

  /** Wait for work still running beside the loops (a lockout enforcement), at stop. */
  async settled(): Promise<void> {
    await this.lockout?.settled();
  }
}
