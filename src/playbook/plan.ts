// A plan is data: the playbook's steps made concrete against the real server state, read-only
// (like pg-boss's dry-run), so the SQL it shows is the SQL apply would run.
import { readFile } from 'node:fs/promises';
import { collectAdministeredRoles, FIRST_NORMAL_OID, isOpen } from '../checks/administered-roles.js';
import { hbaGrants } from '../checks/operator.js';
import { collectPrepared, describePrepared, ONLY_OWNER_OR_SUPERUSER, rollbackAdvice } from '../checks/prepared-xacts.js';
import type { AdministeredRole, OperatorFacts, PreparedXact, Queryable, RoleInfo, ServerFacts } from '../checks/types.js';
import { ExitCode, PgrevokeError } from '../errors.js';
import { resolveRole } from '../inspect/resolve-role.js';
import { RoleAbsent } from '../pg/nodes.js';
import { findRole } from '../pg/roles.js';
import { nodeLabel, type ConnParams } from '../pg/conninfo.js';

export { nodeLabel };
import { ident } from '../pg/quote.js';
import { collectOperator, collectServer } from '../pg/server.js';
import { hasBlock, hbaInexpressible, hbaQuote, locallyWritable } from './hba-file.js';
import type { LoadedPlaybook, StepAction } from './load.js';
import {
  contain,
  containStandby,
  disableSubscription,
  dropOwned,
  dropRole,
  LOCKS_REMAINING,
  reassignOwned,
  RELOAD_CONF,
  REPLAY_POSITION,
  restoreRole,
  rollbackPrepared,
  settleRound,
  STILL_BLOCKED,
  terminate,
} from './sql.js';

export const PLAN_SCHEMA_VERSION = 1;

export const NO_FILE_ACCESS = 'no file access: managed service or remote server; NOLOGIN is the lever';

export const HBA_ERRORS_SQL = `SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number`;

/** The reject rules for the targets as the server now reads the file ($1 text[] of role names). */
export const HBA_OURS_SQL = `SELECT line_number, type, user_name FROM pg_hba_file_rules
WHERE auth_method = 'reject' AND error IS NULL AND user_name && $1::text[] ORDER BY line_number`;

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

export const STANDBY_DDL = 'standby: read-only; this runs on the primary and reaches this node by replay';

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
}

/** How the file edit shows in plans and logs (the lines themselves carry a time: they go in the detail). */
export function hbaNote(roles: string[], file: string): string {
  return `-- prepend reject lines for ${roles.map(hbaQuote).join(', ')} to ${file}`;
}

export const SUBSCRIPTIONS_SQL = `SELECT s.subname::text AS name, d.datname::text AS database, s.subenabled AS enabled
FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE s.subowner = $1::oid ORDER BY 2, 1`;

// dbid 0 = shared objects (databases, tablespaces): REASSIGN OWNED in any one database covers them.
export const OWNED_DATABASES_SQL = `SELECT DISTINCT d.datname::text AS database, sd.dbid = 0 AS shared
FROM pg_shdepend sd LEFT JOIN pg_database d ON d.oid = sd.dbid
WHERE sd.refclassid = 'pg_authid'::regclass AND sd.refobjid = $1::oid AND sd.deptype <> 'p'`;

const SERVER_HBA_CONTENT_SQL = `SELECT pg_read_file(current_setting('hba_file')) AS content`;

async function hbaDecision(
  q: Queryable,
  server: ServerFacts,
  op: OperatorFacts,
  explicit: string | null,
  targets: RoleInfo[],
): Promise<PlanState['hba']> {
  const perRole = Object.fromEntries(targets.map((t) => [t.name, hbaInexpressible(t.name, server.major)]));
  const file = explicit ?? server.hbaFile;
  const skip = (reason: string) => ({ file, skip: reason, perRole, present: [] as string[] });
  // a missing privilege is said as such, with the GRANTs that fix it; "managed service or remote
  // server" only where the file itself is not reachable from here
  const grants = hbaGrants(op);
  const missing = grants.length
    ? `${op.user} may not ${[!op.reload && 'reload the configuration (pg_reload_conf)', !op.readHba && 'read pg_hba_file_rules (to check the edit)'].filter(Boolean).join(' nor ')}: as a superuser, ${grants.join('; ')}; or run as a superuser (on Debian, reload from the shell with pg_ctlcluster ${server.major} <cluster> reload); NOLOGIN is the lever meanwhile`
    : null;
  if (!file)
    return skip(
      `${op.user} may not see hba_file (needs superuser or pg_read_all_settings): pass --hba-file PATH when this host has the server's pg_hba.conf${missing ? `; also, ${missing}` : '; NOLOGIN is the lever'}`,
    );
  const local = await locallyWritable(file);
  if (local) return skip(explicit ? `--hba-file: ${local}` : `${NO_FILE_ACCESS} (${local})`);
  if (missing) return skip(missing);
  if (!explicit) {
    // the same path on this machine is not proof that it is the server's file: compare the bytes
    let theirs: string | undefined;
    try {
      theirs = (await q.query<{ content: string }>(SERVER_HBA_CONTENT_SQL)).rows[0]?.content;
    } catch (err) {
      if ((err as { code?: string }).code === '42501')
        return skip(
          `${op.user} may not read the server's pg_hba.conf to check that ${file} here is it (pg_read_file): as a superuser, GRANT pg_read_server_files TO ${ident(op.user)} (for a file inside the data directory GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) is enough); or pass --hba-file ${file} if it is this server's`,
        );
      return skip(`${NO_FILE_ACCESS} (the server's pg_hba.conf could not be read to compare: ${(err as Error).message})`);
    }
    let mine: string;
    try {
      mine = await readFile(file, 'utf8');
    } catch (err) {
      return skip(`${file} cannot be read here: ${(err as Error).message}`);
    }
    if (theirs !== mine) return skip(`${NO_FILE_ACCESS} (${file} here differs from the server's file: a different machine)`);
  }
  if (targets.every((t) => perRole[t.name]))
    return skip(`no target role can be written in pg_hba.conf: ${Object.values(perRole).join('; ')}`);
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    return skip(`${file} cannot be read: ${(err as Error).message}`);
  }
  const present = targets.filter((t) => !perRole[t.name] && hasBlock(content, t.name)).map((t) => t.name);
  if (targets.every((t) => perRole[t.name] || present.includes(t.name)))
    return { file, skip: `a pgrevoke reject block for each target is already in ${file}`, perRole, present };
  return { file, skip: null, perRole, present };
}

/** Why a non-superuser operator's rollback of `p` cannot run (the plan's skip and apply's, alike). */
export function cannotRollBack(user: string, p: { gid: string; database: string }): string {
  return `not possible: ${user} is not a superuser, and ${ONLY_OWNER_OR_SUPERUSER}; it keeps its locks until a superuser runs ${rollbackAdvice(p)}`;
}

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
    const r = await q.query<{ admin: boolean }>(`SELECT pg_has_role(current_user, $1::oid, 'MEMBER WITH ADMIN OPTION') AS admin`, [t.oid]);
    if (r.rows[0]?.admin) adminOf.push(t.name);
  }
  return { state: { server, targets, prepared, subscriptions, ownedDatabases, hba, adminOf, administered }, operator };
}

/** What this operator cannot do, as a refusal before anything changes (exit 2), or null. */
export function preflight(plan: Plan, state: PlanState, opts: { primaryInRun?: boolean } = {}): PgrevokeError | null {
  const op = plan.operator;
  const who = op.user;
  const standby = state.server.inRecovery;
  if (standby && !opts.primaryInRun)
    return new PgrevokeError('connected to a standby, and its primary is not among the targets: NOLOGIN cannot be applied here', {
      exitCode: ExitCode.USAGE,
      hint: "name the primary too (--target PRIMARY --target STANDBY, or both in --fleet): the standby's sessions are ended once it has replayed the primary's NOLOGIN",
    });
  const supers = state.targets.filter((t) => t.superuser).map((t) => JSON.stringify(t.name));
  if (!op.superuser && supers.length)
    return new PgrevokeError(`${who} cannot cut off ${supers.join(', ')}: altering or terminating a superuser role needs superuser`, {
      sqlstate: '42501',
      exitCode: ExitCode.USAGE,
      hint: 'connect as a superuser',
    });
  if (!op.superuser && !op.signalBackend && !op.memberOfTarget)
    return new PgrevokeError(
      `${who} cannot terminate the role's sessions: pg_terminate_backend needs superuser, pg_signal_backend or membership in the role`,
      {
        sqlstate: '42501',
        exitCode: ExitCode.USAGE,
        hint: 'GRANT pg_signal_backend TO the operator, or connect as a superuser',
      },
    );
  if (!op.superuser && !op.createRole && !standby)
    return new PgrevokeError(`${who} cannot set a role NOLOGIN: ALTER ROLE needs superuser or CREATEROLE`, {
      sqlstate: '42501',
      exitCode: ExitCode.USAGE,
      hint: 'connect as a superuser (or a role with CREATEROLE and pg_signal_backend)',
    });
  const noAdmin = state.targets.filter((t) => !state.adminOf.includes(t.name)).map((t) => JSON.stringify(t.name));
  if (!op.superuser && !standby && state.server.major >= 16 && noAdmin.length)
    return new PgrevokeError(
      `${who} cannot alter ${noAdmin.join(', ')}: since PostgreSQL 16 a CREATEROLE role may alter only roles it holds ADMIN OPTION on`,
      {
        sqlstate: '42501',
        exitCode: ExitCode.USAGE,
        hint: 'connect as a superuser, or GRANT the role TO the operator WITH ADMIN OPTION',
      },
    );
  return null;
}

/** Administered roles that are a way in and not among the targets: the plan leaves them open. */
function leftOpen(state: PlanState, targetOids: number[]): string[] {
  return state.administered
    .filter((r) => isOpen(r) && !targetOids.includes(r.oid))
    .map(
      (r) =>
        `${JSON.stringify(r.name)} (administered by ${JSON.stringify(r.via)}${r.likelyCreated ? ', created by it' : ''}; ${r.canLogin ? 'LOGIN' : 'NOLOGIN'}, ${r.sessions} session(s)) is not cut off: pass --include-created to contain it with ${JSON.stringify(r.of)}`,
    );
}

function planRole(state: PlanState, t: RoleInfo): PlanRole {
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

export interface BuildOptions {
  /** The time written into HBA markers and the plan. */
  now?: Date;
  /** The node's name in a fleet (default host:port). */
  node?: string;
}

/** Pure: the playbook's steps against the collected state. */
export function buildPlan(
  playbook: LoadedPlaybook,
  state: PlanState,
  operator: OperatorFacts,
  params: ConnParams,
  input: PlanInput,
  opts: BuildOptions = {},
): Plan {
  const node = opts.node ?? nodeLabel(params);
  const major = state.server.major;
  const standby = state.server.inRecovery;
  const targets = state.targets;
  const oids = targets.map((t) => t.oid);
  const names = targets.map((t) => t.name);
  const containStep = playbook.steps.find((s) => s.action === 'contain');
  const settleStep = playbook.steps.find((s) => s.action === 'settle');
  const reassignStep = playbook.steps.find((s) => s.action === 'reassign_owned');
  const options: PlanOptions = {
    rotatePassword: Boolean(input.rotatePassword) || (containStep?.action === 'contain' && containStep.rotate_password),
    stripPrivileges: containStep?.action === 'contain' ? containStep.strip_privileges : true,
    settle: {
      timeoutS: input.settleTimeoutS ?? (settleStep?.action === 'settle' ? settleStep.timeout_s : 10),
      hiddenGraceMs: input.hiddenGraceMs ?? (settleStep?.action === 'settle' ? settleStep.hidden_grace_ms : 250),
      intervalMs: settleStep?.action === 'settle' ? settleStep.interval_ms : 20,
    },
    reassignTo: input.reassignTo ?? (reassignStep?.action === 'reassign_owned' ? reassignStep.to : null),
    hbaFile: state.hba.file,
    includeCreated: Boolean(input.includeCreated),
  };
  if (reassignStep && !options.reassignTo)
    throw new PgrevokeError(`playbook ${playbook.name} reassigns the role's objects: say to whom with --reassign-to ROLE`, {
      exitCode: ExitCode.USAGE,
    });

  const steps: PlanStep[] = [];
  const add = (s: Omit<PlanStep, 'index' | 'node' | 'skip'> & { skip?: string | null }) =>
    steps.push({ index: steps.length, node, skip: null, ...s });
  const warnings: string[] = [];
  const exposure = leftOpen(state, oids);
  if (input.includeCreated && major < 16)
    warnings.push(
      `PostgreSQL ${major} does not record which roles a role created: --include-created finds only roles the targets hold ADMIN OPTION on`,
    );
  if (!operator.superuser)
    warnings.push(
      `${operator.user} is not a superuser: a backend still hidden after the grace period cannot be terminated (it has no role yet); exposure would remain`,
    );

  for (const ps of playbook.steps) {
    switch (ps.action) {
      case 'snapshot':
        add({
          action: 'snapshot',
          database: null,
          role: null,
          sql: [],
          reason: 'read-only forensics before anything changes: sessions, hidden backends, locks, blocking, prepared transactions',
        });
        break;
      case 'hba_reject': {
        const file = state.hba.file ?? undefined;
        if (state.hba.skip) {
          add({
            action: 'hba_reject',
            database: null,
            role: null,
            sql: [],
            reason: 'stop new logins at pg_hba.conf',
            skip: state.hba.skip,
            file,
          });
          break;
        }
        const writable = names.filter((n) => !state.hba.perRole[n] && !state.hba.present.includes(n));
        for (const n of names.filter((x) => state.hba.perRole[x]))
          warnings.push(`HBA step skipped for ${JSON.stringify(n)}: ${state.hba.perRole[n]}`);
        add({
          action: 'hba_reject',
          database: null,
          role: null,
          file,
          sql: [hbaNote(writable, file!), RELOAD_CONF, HBA_ERRORS_SQL, HBA_OURS_SQL],
          reason:
            'stop new logins at pg_hba.conf (first match wins: the block goes at the top); checked in pg_hba_file_rules, restored on error',
        });
        break;
      }
      case 'contain': {
        if (standby) {
          add({
            action: 'await_replay',
            database: null,
            role: null,
            sql: [REPLAY_POSITION],
            reason:
              "standby: NOLOGIN reaches this node by WAL replay; wait until it has replayed the primary's position after the commit, so that new logins here are refused before any session is terminated (lag reported)",
          });
          add({
            action: 'contain',
            database: null,
            role: null,
            sql: [containStandby(oids, major).display],
            reason:
              'standby: one round trip: terminate every backend of the role with the forensic snapshot, then list hidden backends (no ALTER here: it came by replay)',
          });
          break;
        }
        const stmt = contain(targets, major, { strip: options.stripPrivileges, rotatePassword: options.rotatePassword });
        add({
          action: 'contain',
          database: null,
          role: null,
          sql: [stmt.display],
          reason:
            'one simple-query round trip: NOLOGIN commits before any session is terminated; the terminate statement returns the forensic snapshot; hidden backends are listed right after the commit',
        });
        break;
      }
      case 'settle':
        add({
          action: 'settle',
          database: null,
          role: null,
          sql: [settleRound(oids, major)],
          reason: `every ${options.settle.intervalMs} ms: terminate by OID again, re-scan hidden backends, re-check LOGIN; until no backend twice in a row and every hidden suspect is resolved (hidden grace ${options.settle.hiddenGraceMs} ms, timeout ${options.settle.timeoutS} s)`,
        });
        break;
      case 'rollback_prepared':
        if (standby || state.prepared.length === 0)
          add({
            action: 'rollback_prepared',
            database: null,
            role: null,
            sql: [],
            reason: 'prepared transactions outlive every session and keep their locks',
            skip: standby ? STANDBY_DDL : 'no prepared transaction of the role (checked again after containment)',
          });
        if (!standby)
          for (const p of state.prepared) {
            // it would fail with 42501: say so before the run, and leave it on the exposure list
            const blocked = operator.superuser ? null : cannotRollBack(operator.user, p);
            if (blocked) exposure.push(`prepared transaction of ${JSON.stringify(p.role)} ${describePrepared(p)}: ${blocked}`);
            add({
              action: 'rollback_prepared',
              database: p.database,
              role: p.role,
              gid: p.gid,
              sql: blocked ? [] : [rollbackPrepared(p.gid)],
              reason: `prepared ${p.prepared}, holds ${p.locks} lock(s); must run in its database`,
              skip: blocked,
            });
          }
        break;
      case 'check_locks':
        add({
          action: 'check_locks',
          database: null,
          role: null,
          sql: [LOCKS_REMAINING, STILL_BLOCKED],
          reason: "read-only: no lock of the role's former backends or prepared transactions remains; which blocked sessions were released",
        });
        break;
      case 'disable_subscriptions':
        if (standby || state.subscriptions.length === 0)
          add({
            action: 'disable_subscriptions',
            database: null,
            role: null,
            sql: [],
            reason: 'an apply worker keeps replicating as the owner after NOLOGIN',
            skip: standby ? STANDBY_DDL : 'the role owns no subscription (checked again after containment)',
          });
        if (!standby)
          for (const s of state.subscriptions)
            add({
              action: 'disable_subscriptions',
              database: s.database,
              role: s.role,
              subscription: s.name,
              sql: [disableSubscription(s.name), terminate(oids)],
              reason: `${s.enabled ? 'enabled' : 'already disabled'}; its apply worker runs as the owner; then end any worker restarted meanwhile`,
            });
        break;
      case 'reassign_owned':
      case 'drop_owned':
        if (standby) {
          add({ action: ps.action, database: null, role: null, sql: [], reason: 'objects are catalog rows', skip: STANDBY_DDL });
          break;
        }
        for (const o of state.ownedDatabases) {
          const dbs = [...o.databases];
          if (o.shared && dbs.length === 0) dbs.push(params.database);
          if (ps.action === 'drop_owned' && dbs.length === 0) dbs.push(params.database);
          if (dbs.length === 0)
            add({
              action: ps.action,
              database: null,
              role: o.role,
              sql: [],
              reason: 'pg_shdepend lists no object of the role',
              skip: 'the role owns nothing and holds no privileges',
            });
          for (const db of dbs)
            add({
              action: ps.action,
              database: db,
              role: o.role,
              sql: [ps.action === 'reassign_owned' ? reassignOwned(o.role, options.reassignTo!) : dropOwned(o.role)],
              reason:
                ps.action === 'reassign_owned'
                  ? `objects of the role in ${ident(db)} go to ${ident(options.reassignTo!)}`
                  : `privileges granted to the role in ${ident(db)} are revoked`,
            });
        }
        break;
      case 'drop_role':
        if (standby) add({ action: 'drop_role', database: null, role: null, sql: [], reason: 'roles are cluster-wide', skip: STANDBY_DDL });
        else
          for (const t of targets)
            add({
              action: 'drop_role',
              database: null,
              role: t.name,
              sql: [dropRole(t.name)],
              reason: 'the role is gone; its OID is kept in the report',
            });
        break;
      case 'verify':
        add({
          action: 'verify',
          database: null,
          role: null,
          sql: [],
          reason: 'read-only: the same collection and evaluation as pgrevoke inspect, per role',
        });
        break;
    }
  }
  return {
    schemaVersion: PLAN_SCHEMA_VERSION,
    playbook: { name: playbook.name, file: playbook.file, reason: playbook.reason, description: playbook.description ?? null },
    node,
    createdAt: (opts.now ?? new Date()).toISOString(),
    server: { version: state.server.version, major: state.server.major, inRecovery: state.server.inRecovery },
    operator,
    roles: targets.map((t) => planRole(state, t)),
    options,
    steps,
    warnings,
    exposure,
  };
}
