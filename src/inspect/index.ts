// inspect: collect (read-only SQL) -> evaluate (pure) -> one report. Never changes anything.
import { administeredRolesCheck, collectAdministeredRoles } from '../checks/administered-roles.js';
import { collectHba, hbaCheck } from '../checks/hba.js';
import { collectHiddenBackends, hiddenBackendsCheck } from '../checks/hidden-backends.js';
import { collectBlocking, collectLocks, locksCheck } from '../checks/locks.js';
import { operatorCheck } from '../checks/operator.js';
import { collectPersistence, persistenceCheck } from '../checks/persistence/index.js';
import { collectPrepared, preparedXactsCheck } from '../checks/prepared-xacts.js';
import { collectConnectionSlots, reservedSlotsCheck } from '../checks/reserved-slots.js';
import { collectMemberships, roleCheck } from '../checks/role.js';
import { collectSessions, sessionsCheck } from '../checks/sessions.js';
import {
  SEVERITY_ORDER,
  type Check,
  type Finding,
  type Queryable,
  type RoleFacts,
  type RoleInfo,
  type ServerFacts,
} from '../checks/types.js';
import { collectOperator, collectServer } from '../pg/server.js';
import type { ConnParams } from '../pg/conninfo.js';
import { collectFailedLogins, type FailedLogins } from './failed-logins.js';
import { resolveRole } from './resolve-role.js';

export const INSPECT_SCHEMA_VERSION = 1;

/** Every check, in report order. One file each; ids are documented in docs/findings.md. */
export const CHECKS: Check[] = [
  roleCheck,
  sessionsCheck,
  hiddenBackendsCheck,
  locksCheck,
  preparedXactsCheck,
  hbaCheck,
  persistenceCheck,
  administeredRolesCheck,
  operatorCheck,
  reservedSlotsCheck,
];

export type Verdict = 'exposed' | 'contained';

export interface InspectOptions {
  allDatabases?: boolean;
  concurrency?: number;
}

export interface Evaluation {
  verdict: Verdict;
  findings: Finding[];
}

export interface InspectReport extends Evaluation {
  schemaVersion: number;
  role: RoleFacts['role'] & RoleFacts['memberships'];
  server: ServerFacts;
  sessions: RoleFacts['sessions'];
  hiddenBackends: RoleFacts['hiddenBackends'];
  locks: RoleFacts['locks'];
  blocking: RoleFacts['blocking'];
  preparedTransactions: RoleFacts['preparedTransactions'];
  hba: RoleFacts['hba'];
  persistence: RoleFacts['persistence'];
  operator: RoleFacts['operator'];
  connectionSlots: RoleFacts['connectionSlots'];
  administeredRoles: RoleFacts['administeredRoles'];
  /** The role's recent failed logins from the server log (null: not readable, see failedLoginsUnreadable). */
  failedLogins: FailedLogins | null;
  /** Why the log could not be read, and what to turn on (null when it was read). */
  failedLoginsUnreadable: string | null;
}

/** What the server log said about the role's failed logins (inspectRole reads it; verify does not). */
export type FailedLoginsFact = Pick<InspectReport, 'failedLogins' | 'failedLoginsUnreadable'>;

/** Pure: findings from every check, most severe first; exposed when any finding is an exposure. */
export function evaluate(facts: RoleFacts): Evaluation {
  const findings = CHECKS.flatMap((c) => c.evaluate(facts)).sort(
    (a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity),
  );
  return { verdict: findings.some((f) => f.exposure) ? 'exposed' : 'contained', findings };
}

/**
 * Databases the role could log in to: templates included (template1 takes logins), datallowconn
 * respected (template0 takes none), CONNECT held (directly, through PUBLIC or a membership).
 */
export const DATABASES_SQL = `SELECT datname FROM pg_catalog.pg_database
  WHERE datallowconn AND pg_catalog.has_database_privilege($1::oid, oid, 'CONNECT') ORDER BY datname`;

/** Collect every fact about a role that is already resolved, on an open connection. */
export async function collectFacts(
  params: ConnParams,
  q: Queryable,
  server: ServerFacts,
  role: RoleInfo,
  opts: InspectOptions = {},
): Promise<RoleFacts> {
  // Persistence opens its own per-database connections; run it beside the main sequence.
  // Settled at once so that a failure there is not an unhandled rejection while the main sequence runs.
  const persistence = collectPersistence(
    params,
    q,
    { roleOid: role.oid, roleName: role.name },
    {
      allDatabases: Boolean(opts.allDatabases),
      concurrency: opts.concurrency ?? 4,
    },
  ).then(
    (value) => ({ value, error: undefined }),
    (error: unknown) => ({ value: undefined, error }),
  );
  const operator = await collectOperator(q, role.oid);
  const memberships = await collectMemberships(q, role.oid);
  const sessions = await collectSessions(q, role.oid);
  const hiddenBackends = await collectHiddenBackends(q, server.major);
  const locks = await collectLocks(q, role.oid, role.name);
  const blocking = await collectBlocking(q, role.oid, role.name);
  const preparedTransactions = await collectPrepared(q, role.name);
  const databases = (await q.query<{ datname: string }>(DATABASES_SQL, [role.oid])).rows.map((r) => r.datname);
  const hba = await collectHba(q, { role, memberships, server, sessions, databases });
  const connectionSlots = await collectConnectionSlots(q, role.oid);
  const administeredRoles = await collectAdministeredRoles(q, role.oid, server.major);
  const settled = await persistence;
  if (settled.error !== undefined) throw settled.error;
  return {
    role,
    memberships,
    server,
    operator,
    sessions,
    hiddenBackends,
    locks,
    blocking,
    preparedTransactions,
    hba,
    persistence: settled.value!,
    connectionSlots,
    administeredRoles,
  };
}

export function toReport(
  facts: RoleFacts,
  evaluation: Evaluation = evaluate(facts),
  knocks: FailedLoginsFact = { failedLogins: null, failedLoginsUnreadable: 'not read' },
): InspectReport {
  return {
    schemaVersion: INSPECT_SCHEMA_VERSION,
    role: { ...facts.role, ...facts.memberships },
    server: facts.server,
    verdict: evaluation.verdict,
    sessions: facts.sessions,
    hiddenBackends: facts.hiddenBackends,
    locks: facts.locks,
    blocking: facts.blocking,
    preparedTransactions: facts.preparedTransactions,
    hba: facts.hba,
    persistence: facts.persistence,
    operator: facts.operator,
    connectionSlots: facts.connectionSlots,
    administeredRoles: facts.administeredRoles,
    failedLogins: knocks.failedLogins,
    failedLoginsUnreadable: knocks.failedLoginsUnreadable,
    findings: evaluation.findings,
  };
}

/** Library entry point: inspect one role on an open connection. */
export async function inspectRole(params: ConnParams, q: Queryable, roleName: string, opts: InspectOptions = {}): Promise<InspectReport> {
  const server = await collectServer(q);
  const role = await resolveRole(q, roleName);
  const facts = await collectFacts(params, q, server, role, opts);
  // after the facts, on the same connection: a bounded read of the log's end (failed-logins.ts)
  return toReport(facts, evaluate(facts), await collectFailedLogins(q, role.name));
}
