// sql: statements of the playbook's own (the extension point; Vault's revocation_statements is the
// nearest peer), e.g. `REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {role}`. `{role}` expands to the
// role's name as a quoted identifier (src/playbook/sql-template.ts checks where it stands). One plan
// step per role and database, so the dry run shows each statement as apply runs it, through the
// same executor; `inverse:` is what restore runs to undo it, from a record only.
import type { z as Z } from 'zod';
import type { Queryable } from '../../checks/types.js';
import { MAX_ROLE_NAME_BYTES } from '../../util/role-name.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import type { IsolatedSession } from '../executor.js';
import { STANDBY_DDL, type PlanState } from '../model.js';
import type { Run } from '../run.js';
import { ENABLED_EVENT_TRIGGERS, EVENT_TRIGGERS_OFF } from '../sql.js';
import { checkTemplate, expandTemplate } from '../sql-template.js';
import {
  Interrupted,
  mustFollow,
  type PlanContext,
  type PlaybookStepOf,
  type RestoreContext,
  type RestorePart,
  type StepKind,
} from './kind.js';

/** Every database that takes connections, templates left out (`database: all`). */
export const ALL_DATABASES_SQL = `SELECT datname::text AS datname FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate ORDER BY datname`;

const DEFAULT_REASON = "the playbook's own statements";

const fields = (z: typeof Z) => {
  const statement = z.string().superRefine((text, ctx) => {
    const problem = checkTemplate(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
  return {
    statements: z.array(statement).min(1, 'at least one statement'),
    /** A database name, `each` (those holding the role's objects) or `all`; default: the one connected to. */
    database: z
      .string()
      .refine(
        (d) => d.length > 0 && !d.includes('\0') && Buffer.byteLength(d) <= MAX_ROLE_NAME_BYTES,
        'a database name (1 to 63 bytes), each or all',
      )
      .optional(),
    on: z.enum(['primary', 'every_node']).default('primary'),
    inverse: z.array(statement).min(1, 'at least one statement (or no inverse: at all)').optional(),
  };
};

export type SqlPlaybookStep = PlaybookStepOf<typeof fields>;

async function collect(q: Queryable, state: PlanState, step: SqlPlaybookStep): Promise<void> {
  if (step.database !== 'all' || state.databases) return;
  state.databases = (await q.query<{ datname: string }>(ALL_DATABASES_SQL)).rows.map((r) => r.datname);
}

/** The databases the step runs in for `role`, or why it runs in none. */
function databasesFor(ctx: PlanContext, step: SqlPlaybookStep, role: string): string[] | string {
  if (step.database === undefined) return [ctx.params.database];
  if (step.database === 'all') return ctx.state.databases ?? 'the list of databases was not read (no collect before the plan)';
  if (step.database !== 'each') return [step.database];
  const owned = ctx.state.ownedDatabases.find((o) => o.role === role);
  if (owned?.databases.length) return owned.databases;
  return `the role owns no object and holds no privilege in any database (pg_shdepend${owned?.shared ? ' lists only cluster-wide ones: databases, tablespaces' : ''})`;
}

function plan(ctx: PlanContext, step: SqlPlaybookStep): void {
  const reason = step.description ?? DEFAULT_REASON;
  for (const t of ctx.targets) {
    const skipped = (skip: string) => ctx.add({ action: 'sql', database: null, role: t.name, sql: [], reason, skip });
    if (ctx.standby && step.on === 'primary') {
      skipped(STANDBY_DDL);
      continue;
    }
    const dbs = databasesFor(ctx, step, t.name);
    if (typeof dbs === 'string') {
      skipped(dbs);
      continue;
    }
    const sql = step.statements.map((s) => expandTemplate(s, t.name));
    const inverse = step.inverse?.map((s) => expandTemplate(s, t.name));
    for (const database of dbs) ctx.add({ action: 'sql', database, role: t.name, sql, reason, ...(inverse ? { inverse } : {}) });
  }
}

/** A later statement failed: the ones before it ran and committed, and the detail says so. */
function partial(err: unknown, i: number, n: number): Error {
  const e = err as { message?: string; code?: string; detail?: string };
  const out = new Error(`statement ${i + 1} of ${n} failed (the ${i} before it ran and committed): ${e.message ?? String(err)}`);
  return Object.assign(out, { code: e.code, detail: e.detail });
}

/**
 * An attacker's event trigger would run as the operator on the step's DDL: on PostgreSQL 17+ a
 * superuser turns them off for the session; elsewhere the enabled ones are named in a warning.
 */
async function eventTriggers(run: Run, session: IsolatedSession, database: string): Promise<void> {
  if (run.major >= 17 && run.deps.operator.superuser) {
    await session.setup(EVENT_TRIGGERS_OFF);
    return;
  }
  const rows = (await session.setup(ENABLED_EVENT_TRIGGERS))[0]?.rows ?? [];
  if (!rows.length) return;
  const named = rows.map((r) => `${JSON.stringify(r.name)} (${String(r.event)}, ${String(r.function)}, owner ${JSON.stringify(r.owner)})`);
  const why = run.major >= 17 ? 'only a superuser may turn them off' : 'event_triggers, which turns them off, exists from PostgreSQL 17';
  const text = `database ${JSON.stringify(database)} has enabled event trigger(s) ${named.join(', ')}: they run with the operator's privileges on the DDL of the playbook's sql statements there (${why}); review what they do`;
  if (!run.report.warnings.includes(text)) run.warn(text);
}

async function apply(run: Run, step: ReportStep): Promise<string> {
  const n = step.sql.length;
  const database = step.database ?? run.deps.params.database;
  // a session of its own, closed with the step: nothing its statements change in a session
  // (set_config(), an event trigger's doing) reaches the steps after it
  const session = await run.exec.isolated(step, database);
  try {
    await eventTriggers(run, session, database);
    for (const [i, sql] of step.sql.entries()) {
      if (i > 0 && run.interrupt.interrupted) throw new Interrupted();
      try {
        await session.run(sql);
      } catch (err) {
        throw i > 0 ? partial(err, i, n) : err;
      }
      if (!run.dry) run.changed = true;
    }
  } finally {
    await session.close();
  }
  return `${run.dry ? 'would run' : 'ran'} ${n} statement(s) in ${step.database}`;
}

/**
 * A role --include-created added during the run has no sql step: the plan expanded the statements
 * for the roles known then. Said, not guessed: the statements are the playbook's, not the plan's.
 */
async function refresh(run: Run, have: readonly ReportStep[]): Promise<[]> {
  const without = run.targets.filter((t) => !have.some((h) => h.role === t.name)).map((t) => JSON.stringify(t.name));
  if (without.length)
    run.warn(
      `${without.join(', ')} joined the cutoff during the run (--include-created): the playbook's sql steps were planned for the roles known before it and were not run for ${without.length > 1 ? 'them' : 'it'}`,
    );
  return [];
}

/**
 * How far a step that did not finish got, when some of its statements may have committed: failed
 * after the first (the detail counts those that committed), interrupted, or not recorded at all (a
 * run cut short). Null when none can have: planned, skipped, or its first statement failed.
 */
function unfinished(s: { status: string; detail: string | null }): string | null {
  const committed = s.status === 'failed' ? /\(the (\d+) before it ran and committed\)/.exec(s.detail ?? '') : null;
  if (committed) return `failed after ${committed[1]} of its statements ran and committed`;
  if (s.status === 'failed' && s.detail?.startsWith('interrupted'))
    return 'was interrupted: some of its statements may have run and committed';
  if (s.status === 'unknown')
    return 'did not record how it ended (the run was cut short): some of its statements may have run and committed';
  return null;
}

/** A note per sql step of the role that did not finish but may have changed something: its inverse is listed, never run. */
function unfinishedNotes(ctx: RestoreContext): string[] {
  return ctx.report.steps.flatMap((s, at) => {
    const how = s.action === 'sql' && s.role === ctx.role ? unfinished(s) : null;
    if (!how) return [];
    const where = s.database ? ` (in ${JSON.stringify(s.database)})` : '';
    const undo = s.inverse?.length
      ? `restore runs no inverse of a step that did not finish; review and run by hand what applies of: ${s.inverse.map((x) => `in ${s.database ? JSON.stringify(s.database) : 'the database connected to'}: ${x}`).join('; ')}`
      : 'it has no inverse: what it did stays done';
    return [`the sql step at index ${s.index ?? at}${where} ${how}; ${undo}`];
  });
}

/** The inverse of the role's done `sql` steps, latest step first; from a report no record backs, only a note. */
function inverse(ctx: RestoreContext): RestorePart {
  const mine = ctx.report.steps
    .map((s, at) => ({ s, index: s.index ?? at }))
    .filter(({ s }) => s.action === 'sql' && s.status === 'done' && s.role === ctx.role)
    .reverse();
  const statements = mine.flatMap(({ s, index }) => (s.inverse ?? []).map((sql) => ({ database: s.database ?? null, sql, step: index })));
  const notes = mine
    .filter(({ s }) => !s.inverse?.length)
    .map(
      ({ s, index }) =>
        `the sql step at index ${index}${s.database ? ` (in ${JSON.stringify(s.database)})` : ''} has no inverse: what it did stays done`,
    );
  notes.push(...unfinishedNotes(ctx));
  if (!ctx.unbacked || statements.length === 0) return { statements, notes };
  const listed = statements.map((x) => `in ${x.database === null ? 'the database connected to' : JSON.stringify(x.database)}: ${x.sql}`);
  notes.push(
    `no record in the state directory backs this report, and restore runs no statement taken from a report alone; the inverse of its sql steps, to run by hand after review: ${listed.join('; ')}`,
  );
  return { statements: [], notes };
}

export const sqlStep = {
  action: 'sql',
  fields,
  repeatable: true,
  order: mustFollow('contain'),
  collect,
  plan,
  refresh,
  apply,
  inverse,
} satisfies StepKind<typeof fields>;
