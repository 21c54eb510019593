// Read-only collection of what a plan is made from: every target resolved, its prepared
// transactions, subscriptions, owned objects, the HBA decision, and the roles it administers.
import { collectAdministeredRoles, FIRST_NORMAL_OID } from '../checks/administered-roles.js';
import { collectPrepared } from '../checks/prepared-xacts.js';
import type { OperatorFacts, Queryable, RoleInfo } from '../checks/types.js';
import { ExitCode, PgrevokeError } from '../errors.js';
import { resolveRole } from '../inspect/resolve-role.js';
import type { ConnParams } from '../pg/conninfo.js';
import { RoleAbsent } from '../pg/nodes.js';
import { findRole } from '../pg/roles.js';
import { collectOperator, collectServer } from '../pg/server.js';
import { hbaDecision } from './hba-decision.js';
import type { PlanInput, PlanRole, PlanState } from './model.js';
import { ADMIN_OF_SQL, OWNED_DATABASES_SQL, restoreRole, SUBSCRIPTIONS_SQL } from './sql.js';

/** The roles `targets` administer, directly or through each other, not themselves targets. */
async function administeredBy(q: Queryable, major: number, targets: RoleInfo[]): Promise<PlanState['administered']> {
  const oids = new Set(targets.map((t) => t.oid));
  const out: PlanState['administered'] = [];
  for (const t of targets)
    for (const r of (await collectAdministeredRoles(q, t.oid, major)).roles)
      if (!oids.has(r.oid) && !out.some((o) => o.oid === r.oid)) out.push({ ...r, of: t.name });
  return out;
}

/** --include-created, re-checked after a confirmation: roles the targets came to administer since `state` was read. */
export async function administeredSince(q: Queryable, state: PlanState): Promise<string[]> {
  return (await administeredBy(q, state.server.major, state.targets)).map((r) => r.name);
}

/**
 * --include-created during the run: the roles the targets came to administer since `state` was
 * read, resolved and added to `state` (targets and administered), each with the plan entry the
 * report lists it under.
 */
export async function adoptAdministered(q: Queryable, state: PlanState): Promise<{ role: RoleInfo; entry: PlanRole }[]> {
  const fresh = await administeredBy(q, state.server.major, state.targets);
  const out: { role: RoleInfo; entry: PlanRole }[] = [];
  for (const a of fresh) {
    const role = await findRole(q, a.name);
    if (!role || role.oid < FIRST_NORMAL_OID) continue;
    state.administered.push(a);
    state.targets.push(role);
    out.push({ role, entry: planRole(state, role) });
  }
  return out;
}

/** Read-only: resolve every target, read what the plan needs, refuse what must not be done (exit 2). */
export async function collectPlanState(
  params: ConnParams,
  q: Queryable,
  input: PlanInput,
  opts: { absentOk?: boolean } = {},
): Promise<{ state: PlanState; operator: OperatorFacts }> {
  if (input.roles.length === 0) throw new PgrevokeError('name at least one role', { exitCode: ExitCode.USAGE });
  const server = await collectServer(q);
  const names = [...new Set(input.roles)];
  // over a fleet a role may exist on some clusters only: cut it off where it exists
  const found = await Promise.all(names.map((name) => (opts.absentOk ? findRole(q, name) : resolveRole(q, name))));
  const named = found.filter((t): t is RoleInfo => t !== null);
  if (named.length === 0) throw new RoleAbsent(`none of the roles exists here (${names.map((r) => JSON.stringify(r)).join(', ')})`);
  const administered = await administeredBy(q, server.major, named);
  // read at plan time; a role created after this is found again after a confirmation and at verification
  const included = input.includeCreated ? await Promise.all(administered.map((r) => resolveRole(q, r.name))) : [];
  const targets = [...named, ...included];
  const operators = await Promise.all(targets.map((t) => collectOperator(q, t.oid)));
  const operator: OperatorFacts = { ...operators[0]!, memberOfTarget: operators.every((o) => o.memberOfTarget) };
  for (const t of targets) {
    if (t.oid < FIRST_NORMAL_OID)
      throw new PgrevokeError(`refusing to cut off ${JSON.stringify(t.name)}: it is a built-in role (oid ${t.oid})`, {
        exitCode: ExitCode.USAGE,
      });
    if (t.name === operator.user)
      throw new PgrevokeError(`refusing to cut off ${JSON.stringify(t.name)}: it is the role you are connected as`, {
        exitCode: ExitCode.USAGE,
        hint: 'connect as another superuser',
      });
  }
  if (input.reassignTo !== undefined && input.reassignTo !== null) {
    const to = await resolveRole(q, input.reassignTo);
    if (targets.some((t) => t.oid === to.oid))
      throw new PgrevokeError('--reassign-to cannot be one of the roles being cut off', { exitCode: ExitCode.USAGE });
  }
  const prepared: PlanState['prepared'] = [];
  const subscriptions: PlanState['subscriptions'] = [];
  const ownedDatabases: PlanState['ownedDatabases'] = [];
  for (const t of targets) {
    prepared.push(...(await collectPrepared(q, t.name)).map((p) => ({ ...p, role: t.name })));
    const subs = await q.query<{ name: string; database: string; enabled: boolean }>(SUBSCRIPTIONS_SQL, [t.oid]);
    subscriptions.push(...subs.rows.map((s) => ({ ...s, role: t.name })));
    const owned = await q.query<{ database: string | null; shared: boolean }>(OWNED_DATABASES_SQL, [t.oid]);
    ownedDatabases.push({
      role: t.name,
      databases: owned.rows.filter((r) => !r.shared && r.database).map((r) => r.database!),
      shared: owned.rows.some((r) => r.shared),
    });
  }
  const hba = await hbaDecision(q, server, operator, input.hbaFile ?? null, targets);
  const adminOf: string[] = [];
  for (const t of targets) {
    const r = await q.query<{ admin: boolean }>(ADMIN_OF_SQL, [t.oid]);
    if (r.rows[0]?.admin) adminOf.push(t.name);
  }
  return { state: { server, targets, prepared, subscriptions, ownedDatabases, hba, adminOf, administered }, operator };
}

/** A target as the plan lists it: its attributes before the cutoff, and how it was included. */
export function planRole(state: PlanState, t: RoleInfo): PlanRole {
  return {
    name: t.name,
    oid: t.oid,
    before: {
      canLogin: t.canLogin,
      superuser: t.superuser,
      createRole: t.createRole,
      connectionLimit: t.connectionLimit,
      validUntil: t.validUntil,
    },
    restoreSql: restoreRole(t),
    included: includedAs(state, t),
  };
}

function includedAs(state: PlanState, t: RoleInfo): PlanRole['included'] {
  const r = state.administered.find((a) => a.oid === t.oid);
  return r ? { administeredBy: r.via, grantor: r.grantor, likelyCreated: r.likelyCreated } : null;
}
