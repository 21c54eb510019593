// What the guard's parts share: the guard-wide context (configuration, where to say things, the
// rules in force) and each node's state, which the loop hands to the connection, tick, unblock and
// failure handling in turn.
import type { AuditOperator } from '../record/audit.js';
import type { DenyList } from './deny-list.js';
import type { AuditTrail } from './events.js';
import type { Blind } from './failures.js';
import type { GuardQuery, GuardRules, KnownRole } from './sql.js';
import type { GuardClient, GuardConfig, GuardListener, GuardNode } from './types.js';

export interface GuardContext {
  readonly cfg: GuardConfig;
  readonly emit: GuardListener;
  readonly audit: AuditTrail;
  readonly deny: DenyList;
  /** Client-side limit for one statement (queryTimeoutMs, or derived from the interval). */
  readonly queryTimeoutMs: number;
}

export function guardContext(cfg: GuardConfig, emit: GuardListener, audit: AuditTrail, deny: DenyList): GuardContext {
  return { cfg, emit, audit, deny, queryTimeoutMs: cfg.queryTimeoutMs ?? Math.max(10_000, 5 * cfg.intervalMs) };
}

export interface NodeState {
  node: GuardNode;
  client: GuardClient | null;
  connectedOnce: boolean;
  failures: number;
  user: string;
  /** The server's major version, as GUARD_SETUP read it on this connection (0 before the first). */
  major: number;
  /** What ended the connection while no statement ran (the next one only says "not queryable"). */
  lostWith: unknown;
  /** `pid:backend_start` of sessions already reported, mapped to what was reported. */
  seen: Map<string, string>;
  /** Roles of the sessions seen, by OID: what the guard knows when pg_authid is locked. */
  roles: Map<string, KnownRole>;
  /** The keys of `roles`, as last sent (null: to rebuild). */
  knownKeys: string[] | null;
  /** The last tick statement and what it was built from (rebuilt when either changes). */
  lastTick: { rules: GuardRules; known: string[]; query: GuardQuery } | null;
  superuser: boolean;
  signalBackend: boolean;
  blind: Blind | null;
  /** What was last said about a blocked tick, and when (said again when it changes, or every REPEAT_MS); since when blocked. */
  blocked: { text: string; atMs: number; sinceMs: number } | null;
}

export function newNode(node: GuardNode): NodeState {
  return {
    node,
    client: null,
    connectedOnce: false,
    failures: 0,
    user: '',
    major: 0,
    lostWith: null,
    seen: new Map(),
    roles: new Map(),
    knownKeys: null,
    lastTick: null,
    superuser: false,
    signalBackend: false,
    blind: null,
    blocked: null,
  };
}

/** Who acts, for the audit line: the guard's database user on that node, and the OS user and host running it. */
export function operatorOf(ctx: GuardContext, n: NodeState): AuditOperator {
  return { dbUser: n.user, osUser: ctx.cfg.operator.osUser, host: ctx.cfg.operator.host };
}
