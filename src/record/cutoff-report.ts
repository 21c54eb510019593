// The cutoff report: what apply returns, what a record closes with and what restore reads back.
// The model only; the renderers (text, markdown) are in src/report/.
import type { BlockingRow, Finding, HiddenBackend, LockRow, PreparedXact, RoleInfo, SessionRow } from '../checks/types.js';
import type { RefusedLogins } from '../inspect/failed-logins.js';
import type { Verdict } from '../inspect/index.js';
import type { Plan, PlanRole, PlanStep } from '../playbook/model.js';

export const CUTOFF_SCHEMA_VERSION = 1;

export type StepStatus = 'planned' | 'done' | 'skipped' | 'failed';

export interface ReportStep extends PlanStep {
  status: StepStatus;
  /** Distinct statements the executor ran for this step, in order (a dry run: would have run). */
  executed: string[];
  startedAt: string | null;
  durationMs: number | null;
  detail: string | null;
}

export interface TerminatedSession {
  /** The node it ran on (a fleet report holds several). */
  node: string;
  pid: number;
  /** The target it ran as (null for a hidden backend: SQL cannot tell). */
  role: string | null;
  user: string | null;
  database: string | null;
  client: string | null;
  application: string | null;
  backendType: string | null;
  state: string | null;
  backendStart: string | null;
  xactStart: string | null;
  query: string | null;
  /** Terminated while still hidden (post-authentication window), by pid. */
  hidden: boolean;
  /** pg_terminate_backend answered true (false: it had already gone). */
  signalled: boolean;
  at: string;
}

export interface Suspect {
  pid: number;
  via: string;
  firstSeen: string;
  resolution: 'open' | 'left' | 'terminated' | 'unresolved';
  detail: string | null;
}

export interface SettleReport {
  iterations: number;
  durationMs: number;
  timedOut: boolean;
  /** Hidden right after the NOLOGIN commit (H0), plus those after a re-applied NOLOGIN. */
  suspects: Suspect[];
  /** Someone switched LOGIN (or SUPERUSER) back on during the loop: NOLOGIN was applied again. */
  reapplied: { at: string; role: string; detail: string }[];
  /** Roles that vanished (dropped) while the loop ran. */
  dropped: string[];
}

/** A session holding a lock the containment statement waited for (found after a lock timeout). */
export interface Blocker {
  /** The backend (null: a prepared transaction, see gid). */
  pid: number | null;
  gid: string | null;
  /** The target it ran as (null: another role's session, left alone). */
  role: string | null;
  user: string | null;
  userOid: number | null;
  mode: string;
  /** The locked relation (pg_authid, ...). */
  relation: string;
  application: string | null;
  query: string | null;
  terminated: boolean;
  at: string;
}

/** The containment statement's attempts: more than one when a lock held it up. */
export interface ContainReport {
  attempts: number;
  blockers: Blocker[];
}

export interface Snapshot {
  takenAt: string;
  sessions: SessionRow[];
  hiddenBackends: HiddenBackend[];
  locks: (LockRow & { role: string })[];
  blocking: (BlockingRow & { role: string })[];
  preparedTransactions: (PreparedXact & { role: string })[];
}

export interface LocksReport {
  remaining: Record<string, unknown>[];
  released: { pid: number; user: string | null; blockedBy: string }[];
  stillBlocked: { pid: number; user: string | null; blockedBy: number[] }[];
}

/** A standby's wait for the primary's NOLOGIN commit to be replayed. */
export interface ReplayReport {
  /** The primary's WAL insert position right after the commit (null: the primary never committed). */
  target: string | null;
  replayed: string | null;
  /** Bytes still to replay at the last look (0 once caught up). */
  lagBytes: number | null;
  caughtUp: boolean;
  waitedMs: number;
}

export interface Verification {
  role: string;
  oid: number;
  verdict: Verdict;
  findings: Finding[];
  /** The role's attributes after the cutoff (null: it no longer exists). */
  after: Pick<RoleInfo, 'canLogin' | 'superuser' | 'createRole' | 'connectionLimit'> | null;
}

export interface CutoffReport {
  schemaVersion: typeof CUTOFF_SCHEMA_VERSION;
  roles: PlanRole[];
  playbook: Plan['playbook'];
  dryRun: boolean;
  node: string;
  server: Plan['server'];
  operator: { user: string; osUser: string; host: string; superuser: boolean };
  reasonText: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** Server time right after NOLOGIN committed: every backend forked later is refused. */
  committedAt: string | null;
  /** The primary's WAL insert position right after that commit (what standbys wait to replay). */
  commitLsn: string | null;
  /** Standby only: the wait for the primary's commit to be replayed here. */
  replay: ReplayReport | null;
  contain: ContainReport | null;
  steps: ReportStep[];
  snapshot: Snapshot | null;
  terminated: TerminatedSession[];
  settle: SettleReport | null;
  locks: LocksReport | null;
  /** `file` as named (--hba-file or hba_file); `written`: its real path, the file edited when it is a link. */
  hba: { file: string; written: string; backup: string | null; lines: string[] } | null;
  verification: Verification[];
  /**
   * Who is still knocking (null: not read: a dry run, verify did not run, or refusedLoginsUnreadable).
   * Every report newReport() starts has both; optional for reports written before they existed.
   */
  refusedLogins?: RefusedLogins | null;
  /** Why the server log could not be read for refusedLogins (never a failure of the cutoff). */
  refusedLoginsUnreadable?: string | null;
  /** Plain sentences: what access may remain. Empty when contained and verified. */
  exposure: string[];
  warnings: string[];
  interrupted: boolean;
  exitCode: number;
  /** The write-ahead record of this run in the state directory (restore --from finds it through this). */
  record?: string | null;
}

/** A report before its run: every step planned, the plan's warnings and exposure as a start. */
export function newReport(
  plan: Plan,
  x: { operator: CutoffReport['operator']; reasonText: string | null; dryRun: boolean; startedAt: string },
): CutoffReport {
  return {
    schemaVersion: CUTOFF_SCHEMA_VERSION,
    roles: [...plan.roles],
    playbook: plan.playbook,
    dryRun: x.dryRun,
    node: plan.node,
    server: plan.server,
    operator: x.operator,
    reasonText: x.reasonText,
    startedAt: x.startedAt,
    finishedAt: null,
    committedAt: null,
    commitLsn: null,
    replay: null,
    contain: null,
    steps: plan.steps.map((st) => ({ ...st, status: 'planned', executed: [], startedAt: null, durationMs: null, detail: null })),
    snapshot: null,
    terminated: [],
    settle: null,
    locks: null,
    hba: null,
    verification: [],
    refusedLogins: null,
    refusedLoginsUnreadable: null,
    exposure: [...plan.exposure],
    warnings: [...plan.warnings],
    interrupted: false,
    exitCode: 0,
  };
}

/** The report of a cutoff refused before anything changed (privileges, standby): every step skipped, exit 2. */
export function refusedReport(
  plan: Plan,
  operator: CutoffReport['operator'],
  why: string,
  reasonText: string | null,
  dryRun: boolean,
): CutoffReport {
  const now = new Date().toISOString();
  const report = newReport(plan, { operator, reasonText, dryRun, startedAt: now });
  return {
    ...report,
    finishedAt: now,
    steps: report.steps.map((st) => ({ ...st, status: 'skipped', detail: `refused before any change: ${why}` })),
    exposure: [],
    exitCode: 2,
  };
}

/** 0 contained and verified; 1 ran, exposure remains; 2 nothing changed (refused, failed before any change); 3 failed or interrupted partway. */
export function exitCodeFor(report: Pick<CutoffReport, 'interrupted' | 'steps' | 'dryRun' | 'exposure'>, changed: boolean): number {
  if (report.interrupted) return 3;
  if (report.steps.some((x) => x.status === 'failed')) return changed ? 3 : 2;
  if (report.dryRun) return 0;
  if (report.exposure.length) return 1;
  return 0;
}
