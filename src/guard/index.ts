// pgrevoke guard as a library: one loop per node, each tick one statement that finds and terminates
// every session that must end (src/guard/sql.ts). Never touches console or process: everything it
// has to say is an event; the CLI layer (src/commands/guard.ts) renders events and owns signals.
// This file is the loop and the lifecycle (init, run, once, stop); the node's connection, its tick,
// a failed tick, a blocked tick and the deny file are each in their own module beside it.
import { PgrevokeError, ExitCode, usageError } from '../errors.js';
import { checkOutputs } from '../record/safe-write.js';
import { backoffDelay, drop, isFatalAtStart, open } from './connection.js';
import { DenyList } from './deny-list.js';
import { AuditTrail, safeListener } from './events.js';
import { GuardExtras } from './extras.js';
import { errText } from './failures.js';
import type { GuardRules } from './sql.js';
import { guardContext, newNode, type GuardContext, type NodeState } from './state.js';
import { StopSignal } from './stop.js';
import { afterFailedTick, sawTick } from './tick-failure.js';
import { tick } from './tick.js';
import type { GuardConfig, GuardListener, PassResult } from './types.js';

export type {
  GuardAuditEntry,
  GuardClient,
  GuardConfig,
  GuardEvent,
  GuardKill,
  GuardListener,
  GuardNode,
  GuardRollback,
  PassResult,
} from './types.js';
export { backoffDelay, isFatalAtStart } from './connection.js';
export { describeReason, guardAuditEntry, toKill } from './kill-event.js';

export class Guard {
  private readonly cfg: GuardConfig;
  private readonly ctx: GuardContext;
  private readonly signal = new StopSignal();
  private readonly extras: GuardExtras;
  private running: Promise<void> | null = null;

  constructor(cfg: GuardConfig, listener: GuardListener) {
    const emit = safeListener(listener);
    this.cfg = cfg;
    this.ctx = guardContext(cfg, emit, new AuditTrail(cfg.auditLog, emit), new DenyList(cfg, emit));
    this.extras = new GuardExtras(this.ctx);
    if (cfg.nodes.length === 0) throw usageError('nothing to guard: no node given');
  }

  /** The rules in force now: --deny plus the deny file as last read. */
  rules(): GuardRules {
    return this.ctx.deny.rules();
  }

  /** Check what can be checked before touching a server: the deny file reads, the audit log opens. */
  async init(): Promise<void> {
    // a deny file that cannot be read, or holds a name that cannot be a role, is exit 2 at start
    if (this.cfg.denyFile) await this.ctx.deny.read();
    await checkOutputs([{ flag: '--audit-log', file: this.cfg.auditLog, append: true }]);
    await this.extras.init();
  }

  /** Re-read the deny file now (SIGHUP). A file that cannot be read keeps the names last read. */
  reload(source: 'signal' | 'file' = 'signal'): Promise<void> {
    return this.ctx.deny.reload(source);
  }

  private async loop(n: NodeState): Promise<void> {
    const { ctx, signal } = this;
    try {
      while (!signal.stopped) {
        if (!n.client) {
          try {
            await open(ctx, n, signal);
          } catch (err) {
            if (signal.stopped) break;
            if (!n.connectedOnce && isFatalAtStart(err)) throw err;
            await this.backOff(n, err, false);
          }
          continue;
        }
        const started = Date.now();
        try {
          await tick(ctx, n);
          sawTick(ctx, n);
          // after the tick, never in its way: the extras never throw
          await this.extras.afterTick(n);
        } catch (err) {
          if (signal.stopped) break;
          const lost = await afterFailedTick(ctx, n, err);
          if (lost !== null) {
            await drop(n);
            n.blind = null;
            await this.backOff(n, lost, true);
            continue;
          }
        }
        await signal.sleep(Math.max(0, this.cfg.intervalMs - (Date.now() - started)));
      }
    } finally {
      this.extras.forget(n);
      await drop(n);
    }
  }

  /** Before the next connect (the first failed, or the connection was lost): say so, and wait longer each time. */
  private async backOff(n: NodeState, err: unknown, lost: boolean): Promise<void> {
    const delayMs = backoffDelay(n.failures, this.cfg.backoff?.minMs ?? 100, this.cfg.backoff?.maxMs ?? 5000);
    n.failures++;
    this.ctx.emit({ type: 'reconnecting', node: n.node.name, error: errText(err), lost, attempt: n.failures, delayMs });
    await this.signal.sleep(delayMs);
  }

  /**
   * Guard every node until stop(). Transient failures (server down, restarting, connection lost)
   * never end it: each node reconnects with exponential backoff. A node that refuses the guard's
   * credentials or database before it was ever connected is a configuration error: every node is
   * stopped and run() rejects with it (exit 2).
   */
  run(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      await this.extras.init();
      const fatal: unknown[] = [];
      await Promise.all(
        this.cfg.nodes.map((node) =>
          this.loop(newNode(node)).catch((err: unknown) => {
            fatal.push(err);
            this.signal.halt();
          }),
        ),
      );
      await this.extras.settled();
      await this.ctx.audit.flushed();
      const first = fatal[0];
      if (first !== undefined) throw first instanceof PgrevokeError ? first : new PgrevokeError(errText(first), { cause: first });
    })();
    return this.running;
  }

  /** One pass over every node (connect, one statement, close); errors are per node. */
  async once(): Promise<PassResult[]> {
    const results = await Promise.all(
      this.cfg.nodes.map(async (node): Promise<PassResult> => {
        const n = newNode(node);
        try {
          await open(this.ctx, n, this.signal);
          if (!n.client) return { node: node.name, found: 0, sessions: 0, error: new PgrevokeError('stopped before connecting') };
          // a fresh node knows no role yet, so its one tick returns (and counts) every session it looks at
          const t = await tick(this.ctx, n);
          return { node: node.name, found: t.reported, sessions: t.sessions, error: null };
        } catch (err) {
          const e = err instanceof PgrevokeError ? err : new PgrevokeError(errText(err), { cause: err, exitCode: ExitCode.USAGE });
          return { node: node.name, found: 0, sessions: 0, error: e };
        } finally {
          await drop(n);
        }
      }),
    );
    await this.ctx.audit.flushed();
    return results;
  }

  /** Stop every loop, close every connection, flush the audit log. */
  async stop(): Promise<void> {
    this.signal.halt();
    if (this.running) await this.running.catch(() => undefined);
    await this.ctx.audit.flushed();
  }
}
