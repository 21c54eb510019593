// Read-only collection of what a plan is made from: every target resolved, its prepared
// transactions, subscriptions, owned objects, the HBA decision, and the roles it administers.
import { collectAdministeredRoles, FIRST_NORMAL_OID, toAdministeredRoles } from '../checks/administered-roles.js';
import { toPreparedXacts } from '../checks/prepared-xacts.js';
import type { AdministeredRole, OperatorFacts, Queryable, RoleInfo, ServerFacts } from '../checks/types.js';
import { ExitCode, PgrevokeError } from '../errors.js';
import { resolveRole } from '../inspect/resolve-role.js';
import type { ConnParams } from '../pg/conninfo.js';
import { RoleAbsent } from '../pg/nodes.js';
import { queryAll } from '../pg/query-all.js';
import { findRole, toRoleInfo, type RoleRow } from '../pg/roles.js';
import { toOperatorFacts, toServerFacts } from '../pg/server.js';
import type { Snapshot } from '../record/cutoff-report.js';
import { hbaDecision } from './hba-decision.js';
import type { PlanInput, PlanRole, PlanState } from './model.js';
import { toSnapshot } from './snapshot-rows.js';
import { PLAN_PARTS, planReads, restoreRole } from './sql.js';

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

/** One role's part of planReads(), by its name (role null: no role has that name). */
interface RoleReads {
  name: string;
  role: RoleInfo | null;
  operator: OperatorFacts;
  administered: AdministeredRole[];
  prepared: PlanState['prepared'];
  subscriptions: PlanState['subscriptions'];
  owned: PlanState['ownedDatabases'][number];
  admin: boolean;
}

interface Reads {
  server: ServerFacts | null;
  roles: RoleReads[];
  reassignTo: RoleInfo | null;
  /** The snapshot's results (SNAPSHOT_PARTS per name, then the hidden backends), when asked for. */
  snapshot: object[][] | null;
}

interface ReadOptions {
  reassignTo?: string | null;
  /** Known when the server's row is not among the reads (a second round). */
  major?: number;
  snapshot?: boolean;
}

/** planReads() in one round trip, its results taken apart. */
async function readPlan(q: Queryable, names: string[], opts: ReadOptions): Promise<Reads> {
  const sql = planReads(names, { server: opts.major === undefined, reassignTo: opts.reassignTo, snapshot: opts.snapshot });
  const results = await queryAll(q, sql);
  const server = opts.major === undefined ? toServerFacts(results.shift()![0]!) : null;
  const major = server?.major ?? opts.major!;
  const n = PLAN_PARTS.length;
  if (results.length < names.length * n) throw new Error(`plan reads: ${results.length} results to ${names.length * n} statements`);
  const roles = names.map((name, i): RoleReads => {
    const [role, op, adm, prepared, subs, owned, admin] = results.slice(i * n, i * n + n) as object[][];
    const ownedRows = owned as { database: string | null; shared: boolean }[];
    return {
      name,
      role: role![0] ? toRoleInfo(role![0] as RoleRow) : null,
      operator: toOperatorFacts(op![0]!),
      administered: toAdministeredRoles(adm!, major).roles,
      prepared: toPreparedXacts(prepared!).map((p) => ({ ...p, role: name })),
      subscriptions: (subs as { name: string; database: string; enabled: boolean }[]).map((x) => ({ ...x, role: name })),
      owned: {
        role: name,
        databases: ownedRows.filter((r) => !r.shared && r.database).map((r) => r.database!),
        shared: ownedRows.some((r) => r.shared),
      },
      admin: Boolean((admin as { admin: boolean | null }[])[0]?.admin),
    };
  });
  const reassigned = opts.reassignTo !== undefined && opts.reassignTo !== null;
  const reassign = reassigned ? results[names.length * n]![0] : undefined;
  const snapshot = opts.snapshot ? results.slice(names.length * n + (reassigned ? 1 : 0)) : null;
  return { server, roles, reassignTo: reassign ? toRoleInfo(reassign as RoleRow) : null, snapshot };
}

/** The roles `named` administer, not themselves targets, each once (the first target it is found under). */
function administeredOf(named: RoleReads[]): PlanState['administered'] {
  const oids = new Set(named.map((t) => t.role!.oid));
  const out: PlanState['administered'] = [];
  for (const t of named)
    for (const r of t.administered) if (!oids.has(r.oid) && !out.some((o) => o.oid === r.oid)) out.push({ ...r, of: t.name });
  return out;
}

/**
 * The roles of `reads` that exist. A name without one is an error with a hint (resolveRole), or,
 * over a fleet (`absentOk`), left out; one created since the batch read is read again.
 */
async function existing(q: Queryable, reads: RoleReads[], major: number, absentOk: boolean): Promise<RoleReads[]> {
  const late: string[] = [];
  for (const r of reads) if (!r.role && !absentOk) late.push((await resolveRole(q, r.name)).name);
  const again = late.length ? (await readPlan(q, late, { major })).roles : [];
  return [...reads.filter((r) => r.role), ...again.filter((r) => r.role)];
}

/** Refuse what must not be done (exit 2): a built-in role, the operator's own. */
function refuseTargets(targets: RoleInfo[], operator: OperatorFacts): void {
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
}

/**
 * Read-only: resolve every target, read what the plan needs, refuse what must not be done (exit 2).
 * One round trip (planReads), a second only for roles --include-created adds or one created meanwhile.
 * With `snapshot` the snapshot step's reads ride in the first round trip too (nothing may stand
 * between them and containment: no prompt); they are kept only when every target was read there.
 */
export async function collectPlanState(
  params: ConnParams,
  q: Queryable,
  input: PlanInput,
  opts: { absentOk?: boolean; snapshot?: boolean } = {},
): Promise<{ state: PlanState; operator: OperatorFacts; snapshot: Snapshot | null }> {
  if (input.roles.length === 0) throw new PgrevokeError('name at least one role', { exitCode: ExitCode.USAGE });
  const names = [...new Set(input.roles)];
  const takenAt = new Date().toISOString();
  const first = await readPlan(q, names, { reassignTo: input.reassignTo, snapshot: opts.snapshot });
  const server = first.server!;
  // over a fleet a role may exist on some clusters only: cut it off where it exists
  const named = await existing(q, first.roles, server.major, Boolean(opts.absentOk));
  if (named.length === 0) throw new RoleAbsent(`none of the roles exists here (${names.map((r) => JSON.stringify(r)).join(', ')})`);
  const administered = administeredOf(named);
  // read at plan time; a role created after this is found again after a confirmation and at verification
  const includedNames = input.includeCreated ? administered.map((r) => r.name) : [];
  const included = includedNames.length
    ? await existing(q, (await readPlan(q, includedNames, { major: server.major })).roles, server.major, false)
    : [];
  const all = [...named, ...included];
  const targets = all.map((r) => r.role!);
  const operator: OperatorFacts = { ...all[0]!.operator, memberOfTarget: all.every((r) => r.operator.memberOfTarget) };
  refuseTargets(targets, operator);
  if (input.reassignTo !== undefined && input.reassignTo !== null) {
    const to = first.reassignTo ?? (await resolveRole(q, input.reassignTo));
    if (targets.some((t) => t.oid === to.oid))
      throw new PgrevokeError('--reassign-to cannot be one of the roles being cut off', { exitCode: ExitCode.USAGE });
  }
  const hba = await hbaDecision(q, server, operator, input.hbaFile ?? null, targets);
  return {
    state: {
      server,
      targets,
      prepared: all.flatMap((r) => r.prepared),
      subscriptions: all.flatMap((r) => r.subscriptions),
      ownedDatabases: all.map((r) => r.owned),
      hba,
      adminOf: all.filter((r) => r.admin).map((r) => r.name),
      administered,
    },
    operator,
    snapshot: snapshotOf(first, all, takenAt),
  };
}

/** The snapshot read with the plan, of `targets`; null when not read, or when a target was read in another round. */
function snapshotOf(first: Reads, targets: RoleReads[], takenAt: string): Snapshot | null {
  if (!first.snapshot || !targets.every((t) => first.roles.includes(t))) return null;
  const names = first.roles.map((r) => r.name);
  return toSnapshot(first.snapshot, names, takenAt, new Set(targets.map((t) => t.name)));
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
