// Shapes shared by every check: the facts collected about one role, and the findings.
import type { HbaFacts } from '../hba/types.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
export const SEVERITY_ORDER: Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

export interface Finding {
  /** Stable id, documented in docs/findings.md (like a lint rule id). */
  id: string;
  severity: Severity;
  title: string;
  detail: string;
  remediation: string;
  /** True when this finding alone makes the role `exposed`. */
  exposure: boolean;
}

/** Anything that can run a parameterised query: a pg Client or Pool. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export interface RoleInfo {
  oid: number;
  name: string;
  superuser: boolean;
  inherit: boolean;
  createRole: boolean;
  createDb: boolean;
  canLogin: boolean;
  replication: boolean;
  bypassRls: boolean;
  connectionLimit: number;
  validUntil: string | null;
  /** validUntil is in the past (server clock). */
  expired: boolean;
}

export interface Membership {
  role: string;
  member: string;
  grantor: string | null;
  adminOption: boolean;
  /** 1 = direct, 2+ = through other roles. */
  depth: number;
}

export interface RoleMemberships {
  /** Roles the target belongs to (directly or inherited): it can act as them. */
  memberOf: Membership[];
  /** Roles that belong to the target: they can act as it. */
  members: Membership[];
}

export interface ServerFacts {
  version: string;
  versionNum: number;
  major: number;
  inRecovery: boolean;
  hbaFile: string | null;
  dataDirectory: string | null;
  /** pg_control_system(): tells a re-initialised cluster on the same host:port from the old one (null: not readable). */
  systemIdentifier?: string | null;
}

export interface OperatorFacts {
  user: string;
  superuser: boolean;
  createRole: boolean;
  signalBackend: boolean;
  /** Member of the target role (may signal its backends). */
  memberOfTarget: boolean;
  readHba: boolean;
  reload: boolean;
  statFile: boolean;
}

/** Connection slots as the server hands them out (read when the server still had room). */
export interface ConnectionSlots {
  maxConnections: number;
  /** superuser_reserved_connections: the last slots, for superusers only. */
  superuserReserved: number;
  /** reserved_connections (PostgreSQL 16+, null before): the slots before those, for pg_use_reserved_connections. */
  reserved: number | null;
  /** The operator has the privileges of pg_use_reserved_connections (16+). */
  operatorUsesReserved: boolean;
  /** The target has them too (it can fill those slots as well). */
  targetUsesReserved: boolean;
}

/** A role the target holds ADMIN OPTION on, directly or through a role it administers. */
export interface AdministeredRole {
  oid: number;
  name: string;
  /** The role holding ADMIN OPTION on it: the target, or a role the target administers. */
  via: string;
  grantor: string | null;
  /** PostgreSQL 16+: the grant CREATE ROLE gives a non-superuser creator (grantor the bootstrap superuser). */
  likelyCreated: boolean;
  canLogin: boolean;
  sessions: number;
}

export interface AdministeredRoles {
  /** False before PostgreSQL 16, which does not record who created a role. */
  recorded: boolean;
  roles: AdministeredRole[];
}

export interface SessionRow {
  pid: number;
  database: string | null;
  user: string | null;
  userOid: number | null;
  clientAddr: string | null;
  clientPort: number | null;
  applicationName: string;
  backendType: string;
  state: string | null;
  backendStart: string | null;
  xactStart: string | null;
  stateChange: string | null;
  waitEventType: string | null;
  waitEvent: string | null;
  queryId: string | null;
  query: string | null;
}

export interface HiddenBackend {
  pid: number;
  /** How it was seen: a virtualxid lock without a pg_stat_activity row (<=17) or state 'starting' (18+). */
  via: 'virtualxid' | 'starting';
  backendStart: string | null;
  clientAddr: string | null;
}

export interface LockRow {
  pid: number | null;
  locktype: string;
  mode: string;
  granted: boolean;
  database: string | null;
  relation: string | null;
  transactionId: string | null;
  virtualTransaction: string | null;
  /** Set when the lock belongs to a prepared transaction, not a backend. */
  preparedGid: string | null;
}

export interface BlockingRow {
  blockedPid: number;
  blockedUser: string | null;
  blockedDatabase: string | null;
  blockedQuery: string | null;
  waitingSeconds: number | null;
  blockerPid: number | null;
  blockerGid: string | null;
}

export interface PreparedXact {
  gid: string;
  database: string;
  transaction: string;
  prepared: string;
  ageSeconds: number;
  locks: number;
  /** What its locks are on ("RowExclusiveLock on accounts", "ExclusiveLock on transaction 745"). */
  holds: string[];
}

export type PersistenceKind =
  | 'security_definer'
  | 'subscription'
  | 'replication_slot'
  | 'event_trigger'
  | 'trigger_function'
  | 'user_mapping'
  | 'default_acl'
  | 'owned_objects'
  | 'cron_job'
  | 'granted_roles';

export interface PersistenceItem {
  kind: PersistenceKind;
  database: string | null;
  /** Qualified object name (or a count label for owned_objects). */
  name: string;
  detail: string;
  /** Still runs or takes effect by itself (an enabled subscription, an active slot, a scheduled job). */
  active: boolean;
}

export interface PersistenceFacts {
  databasesScanned: string[];
  items: PersistenceItem[];
  /** Databases whose catalogs could not be read: the scan is incomplete there. */
  errors: { database: string; sqlstate?: string; message: string }[];
}

export interface RoleFacts {
  role: RoleInfo;
  memberships: RoleMemberships;
  server: ServerFacts;
  operator: OperatorFacts;
  sessions: SessionRow[];
  hiddenBackends: HiddenBackend[];
  locks: LockRow[];
  blocking: BlockingRow[];
  preparedTransactions: PreparedXact[];
  hba: HbaFacts;
  persistence: PersistenceFacts;
  connectionSlots: ConnectionSlots;
  administeredRoles: AdministeredRoles;
}

/** A check: what it collects is in its own file; evaluate is pure over all the facts. */
export interface Check {
  /** The finding ids this check can emit. */
  ids: readonly string[];
  evaluate(facts: RoleFacts): Finding[];
}
