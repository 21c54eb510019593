// guard's failed-login lockout (--lockout-after, --ban-address-after; issue 16). Loaded only when a
// lockout flag is given (extras.ts imports it dynamically, and with it src/lockout and src/serverlog).
// The nodes are grouped by fleet cluster (--target nodes: one group), each group with its own
// engine (lockout-cluster.ts). After a tick on a node, the node's log is read if it is due, on the
// lockout's own connection to that node (lockout-reader.ts), never awaited by the tick: a slow read
// or a stalled statement of the engine holds up neither that tick nor the next.
import { errText } from './failures.js';
import { ClusterLockout, LOCKOUT_PASS_MS } from './lockout-cluster.js';
import { lockoutGroups } from './lockout-groups.js';
import { LogReader } from './lockout-reader.js';
import type { GuardContext, NodeState } from './state.js';
import type { GuardLockoutConfig } from './types.js';

export { LOCKOUT_PASS_MS };

export class LockoutHook {
  private readonly readers = new Map<string, { reader: LogReader; cluster: ClusterLockout }>();
  readonly clusters: ClusterLockout[] = [];
  private stopping = false;

  constructor(
    private readonly ctx: GuardContext,
    cfg: GuardLockoutConfig,
  ) {
    for (const [name, nodes] of lockoutGroups(ctx.cfg.nodes)) {
      const readers = nodes.map((n) => new LogReader(ctx, cfg, n));
      const cluster = new ClusterLockout(ctx, cfg, name, readers);
      this.clusters.push(cluster);
      for (const reader of readers) this.readers.set(reader.node.name, { reader, cluster });
    }
  }

  /** After a tick on a connected node: read its log if due, beside the loop. Never throws, never waits. */
  afterTick(n: NodeState): void {
    const r = this.readers.get(n.node.name);
    if (!r || !n.client || this.stopping || r.reader.polling || Date.now() - r.reader.readAt < LOCKOUT_PASS_MS) return;
    r.reader.readAt = Date.now();
    r.reader.polling = this.poll(r.reader, r.cluster).finally(() => (r.reader.polling = null));
  }

  private async poll(reader: LogReader, cluster: ClusterLockout): Promise<void> {
    try {
      const { failures, cursor } = await reader.poll();
      cluster.add(reader, failures, cursor);
      reader.failing = null;
    } catch (err) {
      const text = errText(err);
      if (text !== reader.failing)
        this.ctx.emit({ type: 'error', node: reader.node.name, message: `lockout: reading the server log failed: ${text}` });
      reader.failing = text;
    }
    if (!this.stopping) cluster.maybePass();
  }

  /**
   * At stop: the reads and passes in flight end (a pg_hba.conf edit is finished, not cut off), what
   * was read meanwhile is counted, the log positions counted are saved, the connections closed.
   */
  async settled(): Promise<void> {
    this.stopping = true;
    const all = [...this.readers.values()].map((r) => r.reader);
    await Promise.all(all.map((r) => r.polling));
    await Promise.all(this.clusters.map((c) => c.settled()));
    await Promise.all(
      all.map(async (r) => {
        await r
          .flush()
          .catch((err: unknown) =>
            this.ctx.emit({ type: 'error', node: r.node.name, message: `lockout: saving the log position failed: ${errText(err)}` }),
          );
        await r.close();
      }),
    );
  }
}
