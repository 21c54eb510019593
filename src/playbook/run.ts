// The typed run context every step's apply is given: the plan, the executor it writes through,
// the reader, the clock, the interrupt, the report being built, and what one step leaves for the
// next (the suspects the contain step found, the settle loop's clean scans, a standby's missing
// NOLOGIN). Steps change the run only through it.
import type { HiddenBackend, Queryable, RoleInfo } from '../checks/types.js';
import type { ConnParams } from '../pg/conninfo.js';
import { queryText, redact } from '../pg/redact.js';
import { newReport, type CutoffReport, type ReportStep, type Snapshot, type Suspect } from '../record/cutoff-report.js';
import type { Executor } from './executor.js';
import type { ServerLocker } from './hba-lock.js';
import { Interrupt } from './interrupt.js';
import type { Plan, PlanState } from './model.js';

export interface ApplyDeps {
  plan: Plan;
  state: PlanState;
  exec: Executor;
  /** Read-only queries on the main connection (collection, verification): both modes run these. */
  reader: Queryable;
  params: ConnParams;
  operator: { user: string; osUser: string; host: string; superuser: boolean };
  reasonText?: string | null;
  interrupt?: Interrupt;
  /** Standby: resolves to the primary's commit position (null: the primary did not commit). */
  replayTarget?: Promise<string | null>;
  /** Primary: called once NOLOGIN has committed, with the position standbys must replay. */
  onCommitted?: (lsn: string | null) => void;
  /** Progress (text mode prints it on stderr). */
  onStep?: (step: ReportStep, phase: 'start' | 'end') => void;
  now?: () => Date;
  /** The snapshot, when it was read with the plan state (no prompt stood between): the snapshot step takes it as it is. */
  snapshot?: Snapshot | null;
  /** The server's pg_hba.conf lock (default: a session of its own in template1); tests without a server pass a stand-in. */
  hbaServerLock?: ServerLocker;
}

/** A hidden backend followed by the settle loop. */
export interface TrackedSuspect extends Suspect {
  since: number;
  sent: boolean;
  info: HiddenBackend;
}

type Row = Record<string, unknown>;

export const num = (v: unknown): number => Number(v);
export const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** An error as a report says it: message, SQLSTATE, detail; secrets masked. */
export function sqlError(err: unknown): string {
  const e = err as { message?: string; code?: string; detail?: string; hint?: string };
  const parts = [redact(e.message ?? String(err))];
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) parts.push(`[SQLSTATE ${e.code}]`);
  if (e.detail) parts.push(`detail: ${redact(e.detail)}`);
  return parts.join(' ');
}

export class Run {
  readonly plan: Plan;
  readonly state: PlanState;
  readonly exec: Executor;
  readonly reader: Queryable;
  readonly deps: ApplyDeps;
  readonly interrupt: Interrupt;
  readonly clock: () => Date;
  readonly dry: boolean;
  readonly major: number;
  readonly standby: boolean;
  /** The roles being cut off; --include-created adds to them during the run. */
  readonly targets: RoleInfo[];
  readonly oids: number[];
  readonly nameByOid: Map<number, string>;
  readonly report: CutoffReport;
  /** Hidden backends seen since the commit, by pid. */
  readonly suspects = new Map<number, TrackedSuspect>();
  /** Something was changed (the exit code tells a failure before any change from one after). */
  changed = false;
  /** Settle rounds in a row that found no backend of the role (the contain step's result counts as one). */
  cleanScans = 0;
  /** Standby: its primary never committed NOLOGIN, so no replay will come. */
  noNologin = false;
  /** Lock holders already listed in contain.blockers (pid or gid, mode, relation). */
  readonly blockerKeys = new Set<string>();
  private readonly seen = new Set<number>();

  constructor(deps: ApplyDeps) {
    const { plan, state } = deps;
    this.deps = deps;
    this.plan = plan;
    this.state = state;
    this.exec = deps.exec;
    this.reader = deps.reader;
    this.clock = deps.now ?? (() => new Date());
    this.interrupt = deps.interrupt ?? new Interrupt();
    this.dry = deps.exec.dryRun;
    this.major = state.server.major;
    this.standby = state.server.inRecovery;
    this.targets = state.targets;
    this.oids = this.targets.map((t) => t.oid);
    this.nameByOid = new Map(this.targets.map((t) => [t.oid, t.name]));
    this.report = newReport(plan, {
      operator: deps.operator,
      reasonText: deps.reasonText ?? null,
      dryRun: this.dry,
      startedAt: this.clock().toISOString(),
    });
  }

  warn(text: string): void {
    this.report.warnings.push(text);
  }

  expose(text: string): void {
    this.report.exposure.push(text);
  }

  /** Terminate-statement rows into report.terminated, each pid once; returns how many were new. */
  recordTerminated(rows: Row[], hidden: boolean, hiddenInfo?: Map<number, HiddenBackend>): number {
    let added = 0;
    for (const r of rows) {
      const pid = num(r.pid);
      if (this.seen.has(pid)) continue;
      this.seen.add(pid);
      added++;
      const info = hiddenInfo?.get(pid);
      this.report.terminated.push({
        node: this.plan.node,
        pid,
        role: r.usesysid === undefined || r.usesysid === null ? null : (this.nameByOid.get(num(r.usesysid)) ?? null),
        user: str(r.usename),
        database: str(r.datname),
        client: str(r.client_addr) ?? info?.clientAddr ?? null,
        application: str(r.application_name),
        backendType: str(r.backend_type),
        state: str(r.state),
        backendStart: str(r.backend_start) ?? info?.backendStart ?? null,
        xactStart: str(r.xact_start),
        query: queryText(str(r.query)),
        hidden,
        signalled: r.terminated === true,
        at: this.clock().toISOString(),
      });
    }
    return added;
  }

  /** Hidden-backend scan rows become suspects the settle loop follows until they resolve. */
  addSuspects(rows: Row[]): void {
    const t = Date.now();
    for (const r of rows) {
      const pid = num(r.pid);
      if (this.suspects.has(pid)) continue;
      const info: HiddenBackend = {
        pid,
        via: r.via === 'starting' ? 'starting' : 'virtualxid',
        backendStart: str(r.backend_start),
        clientAddr: str(r.client_addr),
      };
      this.suspects.set(pid, {
        pid,
        via: info.via,
        firstSeen: new Date(t).toISOString(),
        resolution: 'open',
        detail: null,
        since: t,
        sent: false,
        info,
      });
    }
  }

  /** NOLOGIN committed: the time and WAL position go in the report, and standbys are told. */
  committed(at: { committed_at?: unknown; commit_lsn?: unknown } | undefined): void {
    this.report.committedAt = str(at?.committed_at);
    this.report.commitLsn = str(at?.commit_lsn);
    this.deps.onCommitted?.(this.report.commitLsn);
  }
}
