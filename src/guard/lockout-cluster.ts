// One cluster's lockout in guard (issue 16): one LockoutEngine for the cluster's nodes, fed the
// failures read from any of them (the attacker tries the standby next) and enforcing on all of
// them, never on another cluster's. Enforcement may wait seconds on pg_hba.conf locks, so it runs
// beside the loop: at most one ingest+enforce in flight, failures read meanwhile wait for the
// next. A pass whose ingest throws keeps its failures for the next one (bounded); the log positions
// they were read up to are saved only once they have been counted. An enforcement that throws is
// retried by the next pass without handing the failures over again. The engine keeps a batch's
// counts only once what they made is written (src/lockout/engine.ts), so a retried batch counts once.
import { LockoutEngine, type LockoutNode } from '../lockout/index.js';
import type { AuthFailure, LogCursor } from '../serverlog/types.js';
import { errText } from './failures.js';
import type { LogReader } from './lockout-reader.js';
import type { GuardContext } from './state.js';
import type { GuardLockoutConfig } from './types.js';

/**
 * How often the log is read and the lockouts enforced: not every tick, so that the tick's round trip
 * stays the only one on most ticks (the kill path's latency and CPU are measured at the default
 * interval), yet a lockout is in force well within a second of the failure that makes it.
 */
export const LOCKOUT_PASS_MS = 400;
/** Failures kept for the next pass while passes fail; past it the oldest go (said once per run of failures). */
export const MAX_RETAINED_FAILURES = 20_000;

/** What the next pass ingests: the failures read, and per node the position they were read up to. */
interface Pending {
  failures: AuthFailure[];
  cursors: Map<LogReader, { cursor: LogCursor | null; hadFailures: boolean }>;
}

const empty = (): Pending => ({ failures: [], cursors: new Map() });

export class ClusterLockout {
  readonly engine: LockoutEngine;
  private pending: Pending = empty();
  private inFlight: Promise<void> | null = null;
  /** When the last pass began, and whether it failed (a failing pass is retried at the pass interval, not every tick). */
  private passAt = 0;
  private failed = false;
  private failing: string | null = null;
  private dropped = 0;

  constructor(
    private readonly ctx: GuardContext,
    cfg: GuardLockoutConfig,
    readonly name: string | null,
    readonly readers: readonly LogReader[],
  ) {
    const nodes: LockoutNode[] = readers.map((r) => ({
      name: r.node.name,
      params: r.node.params,
      client: () => r.conn.current(),
      hbaFile: cfg.hbaFile ?? undefined,
    }));
    this.engine = new LockoutEngine({
      policy: cfg.policy,
      nodes,
      env: cfg.env,
      auditLog: ctx.cfg.auditLog,
      operator: ctx.cfg.operator,
      onEvent: (lockout) => ctx.emit({ type: 'lockout', lockout }),
    });
  }

  /** A node's poll: its failures wait for the next pass, with the position they were read up to. */
  add(reader: LogReader, failures: readonly AuthFailure[], cursor: LogCursor | null): void {
    const p = this.pending;
    p.failures.push(...failures);
    p.cursors.set(reader, { cursor, hadFailures: failures.length > 0 || (p.cursors.get(reader)?.hadFailures ?? false) });
    this.bound();
  }

  private bound(): void {
    const over = this.pending.failures.length - MAX_RETAINED_FAILURES;
    if (over <= 0) return;
    this.pending.failures.splice(0, over);
    if (this.dropped === 0)
      this.ctx.emit({
        type: 'warning',
        node: null,
        message: `lockout${this.name ? ` (cluster ${this.name})` : ''}: more than ${MAX_RETAINED_FAILURES} failed logins wait while passes fail: the oldest are dropped uncounted`,
      });
    this.dropped += over;
  }

  /** Start a pass unless one runs: at once when failures wait, else every LOCKOUT_PASS_MS (expiry, blocks removed by hand). */
  maybePass(): void {
    if (this.inFlight) return;
    const since = Date.now() - this.passAt;
    if (since < LOCKOUT_PASS_MS && (this.failed || this.pending.failures.length === 0)) return;
    this.start();
  }

  private start(): Promise<void> {
    this.passAt = Date.now();
    return (this.inFlight = this.pass().finally(() => (this.inFlight = null)));
  }

  private async pass(): Promise<void> {
    const batch = this.pending;
    this.pending = empty();
    try {
      await this.engine.ingest(batch.failures);
    } catch (err) {
      this.keep(batch);
      this.fail(err);
      return;
    }
    // counted: from here on a failure is never handed over again (it would count twice), and the positions may be saved
    this.dropped = 0;
    await Promise.all(
      [...batch.cursors].map(([r, c]) =>
        r
          .save(c.cursor, c.hadFailures)
          .catch((err: unknown) =>
            this.ctx.emit({ type: 'error', node: r.node.name, message: `lockout: saving the log position failed: ${errText(err)}` }),
          ),
      ),
    );
    try {
      await this.engine.enforce();
    } catch (err) {
      this.fail(err);
      return;
    }
    this.failed = false;
    this.failing = null;
  }

  /** A batch not counted goes back, before what was read since, so that the order they were logged in holds. */
  private keep(batch: Pending): void {
    const later = this.pending;
    this.pending = { failures: [...batch.failures, ...later.failures], cursors: batch.cursors };
    for (const [r, c] of later.cursors)
      batch.cursors.set(r, { cursor: c.cursor, hadFailures: c.hadFailures || (batch.cursors.get(r)?.hadFailures ?? false) });
    this.bound();
  }

  private fail(err: unknown): void {
    this.failed = true;
    const text = errText(err);
    if (text !== this.failing)
      this.ctx.emit({ type: 'error', node: null, message: `lockout pass failed${this.name ? ` (cluster ${this.name})` : ''}: ${text}` });
    this.failing = text;
  }

  /**
   * At stop: the pass in flight ends, then one last pass (one try) counts what was read meanwhile,
   * and the knocks not written yet (the engine writes them at most every 5 s) are written.
   */
  async settled(): Promise<void> {
    await this.inFlight;
    if (this.pending.failures.length || this.pending.cursors.size) await this.start();
    await this.engine.flush().catch((err: unknown) => this.fail(err));
  }
}
