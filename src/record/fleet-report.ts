// A cutoff report over several nodes (--target, --fleet, --pgbouncer): one section per node.
import type { PgbouncerSection } from '../pgbouncer/section.js';
import type { CutoffReport } from './cutoff-report.js';

export type NodeStatus = 'contained' | 'exposed' | 'planned' | 'partial' | 'absent' | 'refused' | 'unreachable' | 'failed';

export interface NodeOutcome {
  node: string;
  cluster: string | null;
  /** Detected with pg_is_in_recovery() (null: never reached). */
  role: 'primary' | 'standby' | null;
  status: NodeStatus;
  /** Why it was not changed, or what failed (SQLSTATE and hint included). */
  error: string | null;
  report: CutoffReport | null;
}

export interface FleetCutoffReport {
  schemaVersion: 1;
  kind: 'fleet';
  roles: string[];
  playbook: string;
  dryRun: boolean;
  operator: { osUser: string; host: string };
  reasonText: string | null;
  startedAt: string;
  finishedAt: string;
  /** One section per node, in the order they were named. */
  nodes: NodeOutcome[];
  /** Each PgBouncer console (--pgbouncer, or the fleet file's): run after NOLOGIN committed. */
  pgbouncer: PgbouncerSection[];
  /** Every node's remaining exposure, prefixed with the node name. */
  exposure: string[];
  exitCode: number;
  /** The write-ahead record of this run in the state directory (restore --from finds it through this). */
  record?: string | null;
}
