// guard's failed-login lockout (--lockout-after, --ban-address-after; issue 16): after each tick on
// a node, the authentication failures its log gained (over SQL, or --server-log FILE) go to one
// LockoutEngine for all the guard's nodes (they are taken as one cluster), which then enforces.
// Enforcement may wait seconds on pg_hba.conf locks, so it runs beside the loop, never awaited by
// the tick: at most one ingest+enforce in flight; failures read meanwhile wait for the next one.
import { LockoutEngine, type LockoutClient, type LockoutEvent, type LockoutNode } from '../lockout/index.js';
import { FileLogSource } from '../serverlog/file-source.js';
import { SqlLogSource } from '../serverlog/sql-source.js';
import { SETTINGS_SQL, type SettingsRow } from '../serverlog/sql.js';
import type { AuthFailure, AuthFailureSource } from '../serverlog/types.js';
import { errText } from './failures.js';
import type { GuardContext, NodeState } from './state.js';
import type { GuardEvent, GuardLockoutConfig } from './types.js';

/**
 * How often the log is read and the lockouts enforced: not every tick, so that the tick's round trip
 * stays the only one on most ticks (the kill path's latency and CPU are measured at the default
 * interval), yet a lockout is in force well within a second of the failure that makes it.
 */
export const LOCKOUT_PASS_MS = 400;

interface HookNode {
  state: NodeState | null;
  source: AuthFailureSource | null;
  /** When its log was last read (Date.now()). */
  readAt: number;
  /** The last error said, so that a log failing the same way each tick is said once. */
  failing: string | null;
}

/** A lockout event as a guard status line: done on a node is info, kept LOGIN and caps are warnings, a failure an error. */
export function lockoutGuardEvent(e: LockoutEvent): GuardEvent {
  const l = e.lockout;
  const what = l ? ` ${l.kind} ${l.role ?? '*'}${l.address ? ` from ${l.address}` : ''} until ${l.until}` : '';
  const message = `${e.event === 'lockout' ? 'lockout in force' : `lockout ${e.event}`}:${what}${e.detail ? ` (${e.detail})` : ''}`;
  const type = e.event === 'failed' ? 'error' : e.event === 'cap' || e.event === 'login_kept' ? 'warning' : 'info';
  return { type, node: e.node, message };
}

export class LockoutHook {
  private readonly engine: LockoutEngine;
  private readonly nodes = new Map<string, HookNode>();
  private pending: AuthFailure[] = [];
  private inFlight: Promise<void> | null = null;
  /** When the last ingest+enforce began (Date.now()). */
  private passAt = 0;
  private enforceFailing: string | null = null;

  constructor(
    private readonly ctx: GuardContext,
    private readonly cfg: GuardLockoutConfig,
  ) {
    for (const n of ctx.cfg.nodes) this.nodes.set(n.name, { state: null, source: null, readAt: 0, failing: null });
    const lockoutNodes: LockoutNode[] = ctx.cfg.nodes.map((n) => ({
      name: n.name,
      params: n.params,
      client: () => (this.nodes.get(n.name)?.state?.client as LockoutClient | null | undefined) ?? null,
      hbaFile: cfg.hbaFile ?? undefined,
    }));
    this.engine = new LockoutEngine({
      policy: cfg.policy,
      nodes: lockoutNodes,
      auditLog: ctx.cfg.auditLog,
      operator: ctx.cfg.operator,
      onEvent: (e) => ctx.emit(lockoutGuardEvent(e)),
    });
  }

  /** The node's log source: over SQL through whatever connection the node has now (the position outlives reconnects). */
  private async source(n: NodeState, h: HookNode): Promise<AuthFailureSource> {
    if (h.source) return h.source;
    const q = (text: string, values?: unknown[]) => {
      const c = h.state?.client;
      if (!c) throw new Error('not connected');
      return c.query<never>({ text, values, query_timeout: this.ctx.queryTimeoutMs });
    };
    const queryable = { query: q } as ConstructorParameters<typeof SqlLogSource>[0];
    if (!this.cfg.serverLog) return (h.source = new SqlLogSource(queryable, { label: n.node.name }));
    // a file has no settings of its own: the server says how it writes it
    const s = (await n.client!.query<SettingsRow>({ text: SETTINGS_SQL, query_timeout: this.ctx.queryTimeoutMs })).rows[0]!;
    return (h.source = new FileLogSource({ file: this.cfg.serverLog, prefix: s.prefix, zone: s.zone, logHostname: s.hostname === 'on' }));
  }

  /** After a tick on a connected node: read its log, then start an ingest+enforce unless one is running. Never throws. */
  async afterTick(n: NodeState): Promise<void> {
    const h = this.nodes.get(n.node.name);
    if (!h || !n.client) return;
    h.state = n;
    if (Date.now() - h.readAt < LOCKOUT_PASS_MS) return;
    h.readAt = Date.now();
    try {
      const src = await this.source(n, h);
      const failures = await src.poll();
      this.pending.push(...failures);
      h.failing = null;
    } catch (err) {
      const text = errText(err);
      if (text !== h.failing)
        this.ctx.emit({ type: 'error', node: n.node.name, message: `lockout: reading the server log failed: ${text}` });
      h.failing = text;
    }
    if (this.inFlight || (this.pending.length === 0 && Date.now() - this.passAt < LOCKOUT_PASS_MS)) return;
    this.passAt = Date.now();
    this.inFlight = this.pass().finally(() => (this.inFlight = null));
  }

  private async pass(): Promise<void> {
    const failures = this.pending;
    this.pending = [];
    try {
      await this.engine.ingest(failures);
      await this.engine.enforce();
      this.enforceFailing = null;
    } catch (err) {
      const text = errText(err);
      if (text !== this.enforceFailing) this.ctx.emit({ type: 'error', node: null, message: `lockout pass failed: ${text}` });
      this.enforceFailing = text;
    }
  }

  /** The node's loop ended: its connection is gone (its log position is kept for a restart of the loop). */
  forget(n: NodeState): void {
    const h = this.nodes.get(n.node.name);
    if (h && h.state === n) h.state = null;
  }

  /** Wait for the pass in flight (at stop: a pg_hba.conf edit is finished, not cut off). */
  async settled(): Promise<void> {
    // failures read while a pass ran are ingested too, before the guard exits
    while (this.inFlight || this.pending.length) await (this.inFlight ??= this.pass().finally(() => (this.inFlight = null)));
  }
}
