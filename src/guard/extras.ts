// What the guard runs on a node after each tick, beside the tick itself: --on-membership-revoked
// (membership-holdover.ts) and the failed-login lockout (lockout-hook.ts). Its state per node lives here, keyed by the node's state, so
// that neither the tick nor NodeState has to know it. Never throws: a failed pass is said (once
// per distinct error) and the snapshot kept, so the next pass sees the same change and tries again.
import { errText } from './failures.js';
import type { LockoutHook } from './lockout-hook.js';
import { endMembershipHoldovers } from './membership-holdover.js';
import type { MembershipSnapshot } from './membership.js';
import { operatorOf, type GuardContext, type NodeState } from './state.js';

interface ExtraNode {
  /** pg_auth_members as last seen; kept across reconnects, so a REVOKE while disconnected is still seen. */
  snapshot: MembershipSnapshot | null;
  /** The last error said, so that a pass failing the same way each tick is said once. */
  failing: string | null;
}

export class GuardExtras {
  private readonly nodes = new Map<NodeState, ExtraNode>();
  private lockout: LockoutHook | null = null;

  constructor(private readonly ctx: GuardContext) {}

  /**
   * Load what the configuration asks for: the lockout hook (and with it src/lockout and
   * src/serverlog) only with a lockout flag, so that a guard without one never loads them.
   */
  async init(): Promise<void> {
    const cfg = this.ctx.cfg.lockout;
    if (!cfg || this.lockout) return;
    const { LockoutHook } = await import('./lockout-hook.js');
    this.lockout = new LockoutHook(this.ctx, cfg);
  }

  /** After a tick on a connected node. */
  async afterTick(n: NodeState): Promise<void> {
    this.lockout?.afterTick(n);
    await this.membership(n);
  }

  private async membership(n: NodeState): Promise<void> {
    const { ctx } = this;
    const client = n.client;
    if (!ctx.cfg.onMembershipRevoked || !client) return;
    let x = this.nodes.get(n);
    if (!x) this.nodes.set(n, (x = { snapshot: null, failing: null }));
    try {
      // read with the connection's setup (GUARD_SETUP): a reconnect reads it again, the server may have been upgraded
      const r = await endMembershipHoldovers(client, x.snapshot, {
        major: n.major,
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
  }

  /** Wait for work still running beside the loops (a lockout enforcement), at stop; close what it opened. */
  async settled(): Promise<void> {
    await this.lockout?.settled();
  }
}
