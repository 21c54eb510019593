// The plan's data model: what a plan is made of, what apply and restore read back, and what the
// collected server state holds. Types (and two constants), so that the step kinds, the planner and the record
// store can all import it without importing each other.
import type { AdministeredRole, OperatorFacts, PreparedXact, RoleInfo, ServerFacts } from '../checks/types.js';

/** The playbook actions (the step kinds in src/playbook/steps/ that a playbook can name). */
export type StepAction =
  | 'snapshot'
  | 'hba_reject'
  | 'contain'
  | 'settle'
  | 'rollback_prepared'
  | 'check_locks'
  | 'disable_subscriptions'
  | 'reassign_owned'
  | 'drop_owned'
  | 'drop_role'
  | 'verify'
  | 'sql';

export const PLAN_SCHEMA_VERSION = 1;

/** Why a step that changes catalog rows is skipped on a standby. */
export const STANDBY_DDL = 'standby: read-only; this runs on the primary and reaches this node by replay';

export interface PlanRole {
  name: string;
  oid: number;
  /** Attributes before the cutoff, so that a later restore can undo it. */
  before: { canLogin: boolean; superuser: boolean; createRole: boolean; connectionLimit: number; validUntil: string | null };
  /** Undo of the attribute changes (the old password cannot come back). */
  restoreSql: string;
  /** The record the before-state was taken from (a rerun after a cut-short cutoff), else absent. */
  beforeFrom?: string | null;
  /** Not named by the operator: a target administers it (--include-created). Null for named roles. */
  included?: { administeredBy: string; grantor: string | null; likelyCreated: boolean } | null;
}

/** A playbook action, or one the plan adds on its own (a standby waits for replay before containing). */
export type PlanAction = StepAction | 'await_replay';

export interface PlanStep {
  index: number;
  action: PlanAction;
  node: string;
  database: string | null;
  /** The role this step acts on; null when it acts on every target at once. */
  role: string | null;
  /** Statements in the form they may be shown (a rotated password as '*****'). */
  sql: string[];
  reason: string;
  /** Known at plan time to be skipped, and why. */
  skip: string | null;
  /** The prepared transaction, subscription or HBA file the step is about. */
  gid?: string;
  subscription?: string;
  file?: string;
  /** A `sql` step: the statements restore runs to undo it (expanded like `sql`). */
  inverse?: string[];
}

export interface PlanOptions {
  rotatePassword: boolean;
  stripPrivileges: boolean;
  settle: { timeoutS: number; hiddenGraceMs: number; intervalMs: number };
  reassignTo: string | null;
  hbaFile: string | null;
  /** --include-created: roles the targets come to administer during the run are contained too. */
  includeCreated: boolean;
}

export interface Plan {
  schemaVersion: typeof PLAN_SCHEMA_VERSION;
  playbook: { name: string; file: string; reason: string; description: string | null };
  node: string;
  createdAt: string;
  server: { version: string; major: number; inRecovery: boolean };
  operator: OperatorFacts;
  roles: PlanRole[];
  options: PlanOptions;
  steps: PlanStep[];
  /** What the operator should know before applying (nothing here stops the cutoff). */
  warnings: string[];
  /** Access the plan knowingly leaves open (roles a target made, without --include-created). */
  exposure: string[];
}

export interface PlanInput {
  roles: string[];
  rotatePassword?: boolean;
  reassignTo?: string | null;
  hbaFile?: string | null;
  settleTimeoutS?: number;
  hiddenGraceMs?: number;
  /** Cut off the roles the targets administer (PG16+: the roles they created) with them. */
  includeCreated?: boolean;
}

/** The live facts the plan was made from; apply keeps using them (never serialized). */
export interface PlanState {
  server: ServerFacts;
  targets: RoleInfo[];
  prepared: (PreparedXact & { role: string })[];
  subscriptions: { role: string; name: string; database: string; enabled: boolean }[];
  ownedDatabases: { role: string; databases: string[]; shared: boolean }[];
  hba: { file: string | null; skip: string | null; perRole: Record<string, string | null>; present: string[] };
  /** Targets the operator holds ADMIN OPTION on (PG16+: a CREATEROLE operator may alter only those). */
  adminOf: string[];
  /** Roles the named targets administer, each with the target it was found under. */
  administered: (AdministeredRole & { of: string })[];
  /** Every database that takes connections, templates left out (read by a `sql` step with `database: all`). */
  databases?: string[];
}

export interface BuildOptions {
  /** The time written into HBA markers and the plan. */
  now?: Date;
  /** The node's name in a fleet (default host:port). */
  node?: string;
}
