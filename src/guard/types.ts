// The shapes guard's parts share with each other and with the CLI layer (src/commands/guard.ts,
// src/report/guard.ts): its configuration, the client it drives, and the events it emits. Types
// only, so that every part may import them without importing another part.
import type { ConnParams, TargetNode } from '../pg/conninfo.js';
import type { PgrevokeError } from '../errors.js';
import type { AuditEntry, AuditReason } from '../record/audit.js';
import type { LockoutEvent, LockoutPolicy } from '../lockout/types.js';
import type { AuditSession } from '../sessions/kill.js';
import type { TimeoutRules } from './sql.js';

/** The part of a pg Client the guard uses (a fake one in unit tests). */
export interface GuardClient {
  query<R extends object>(config: { name?: string; text: string; values?: unknown[]; query_timeout?: number }): Promise<{ rows: R[] }>;
  end(): Promise<void>;
  /** pg reports a connection that dies between statements here (57P01 on a restart...). */
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * A node's name and its connection parameters (resolveTargets in src/fleet/targets.ts), and its
 * fleet cluster: the lockout engine's unit (null, or absent: --target nodes, one group together).
 */
export type GuardNode = TargetNode & { cluster?: string | null };

export interface GuardConfig {
  nodes: readonly GuardNode[];
  /** --deny names (the deny file's names are added to them). */
  deny: readonly string[];
  denyFile: string | null;
  exclude: readonly string[];
  idle: TimeoutRules;
  idleInTransaction: TimeoutRules;
  intervalMs: number;
  dryRun: boolean;
  auditLog: string | null;
  /** Who runs the guard, for audit lines (the database user is read per node). */
  operator: { osUser: string; host: string };
  /** Reconnect delays: doubling from minMs, capped at maxMs. */
  backoff?: { minMs: number; maxMs: number };
  /** Client-side limit for one statement (the server-side statement_timeout is 5 s). */
  queryTimeoutMs?: number;
  /** A node whose tick keeps failing (connected, not blocked by a lock) this long ends run() with exit 3; 0: never. Default 30 s. */
  maxBlindMs?: number;
  /** --on-membership-revoked: after each tick, end the sessions of a member that lost a role it could SET ROLE to (extras.ts). */
  onMembershipRevoked?: boolean;
  /** --lockout-after / --ban-address-after: lock out failed logins read from the server log (lockout-hook.ts); null: off. */
  lockout?: GuardLockoutConfig | null;
  /** Injected in unit tests; default: src/pg/connect.ts. */
  connect?: (p: ConnParams) => Promise<GuardClient>;
}

/** guard's lockout: the policy, the log file (--server-log; null: read over SQL) and pg_hba.conf on this machine (--hba-file). */
export interface GuardLockoutConfig {
  policy: LockoutPolicy;
  serverLog: string | null;
  hbaFile: string | null;
  /** Where the state directory is (PGREVOKE_STATE_DIR); default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** One session the guard ended, would end (dry run) or may not end (permissions). */
export interface GuardKill {
  time: string;
  node: string;
  pid: number;
  role: string | null;
  usesysid: number;
  database: string | null;
  client: string | null;
  application: string | null;
  backendType: string | null;
  state: string | null;
  backendStart: string | null;
  reason: AuditReason;
  detail: string;
  query: string | null;
  terminated: boolean;
  dryRun: boolean;
}

/** A prepared transaction the guard rolled back, or would roll back (dry run), because it held a lock its tick needs. */
export interface GuardRollback {
  time: string;
  node: string;
  gid: string;
  /** The owner (the role that prepared it), as the guard remembers it. */
  role: string | null;
  usesysid: number;
  databaseOid: number;
  prepared: string | null;
  /** e.g. `AccessExclusiveLock on pg_authid`. */
  locks: string;
  reason: AuditReason;
  detail: string;
  rolledBack: boolean;
  dryRun: boolean;
}

export type GuardEvent =
  | { type: 'kill'; kill: GuardKill }
  | { type: 'rollback'; rollback: GuardRollback }
  | { type: 'denied'; kill: GuardKill; message: string }
  | { type: 'connected'; node: string; user: string; version: string; standby: boolean; superuser: boolean; afterFailures: number }
  | { type: 'reconnecting'; node: string; error: string; lost: boolean; attempt: number; delayMs: number }
  | { type: 'reloaded'; source: 'signal' | 'file'; deny: number; added: string[]; removed: string[] }
  | { type: 'lockout'; lockout: LockoutEvent }
  | { type: 'warning'; node: string | null; message: string }
  | { type: 'info'; node: string | null; message: string }
  | { type: 'error'; node: string | null; message: string };

export type GuardListener = (e: GuardEvent) => void;

export interface PassResult {
  node: string;
  /** Sessions reported (killed, would be killed, or could not be killed). */
  found: number;
  /** Sessions looked at (see TickResult.sessions); 0 when the node failed. */
  sessions: number;
  error: PgrevokeError | null;
}

/** The audit line of a guard action: the shared entry plus the session it ended. */
export type GuardAuditEntry = AuditEntry & {
  session: AuditSession & { usesysid: number; state: string | null; backendType: string | null; backendStart: string | null };
};
