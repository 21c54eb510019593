// Fixtures for the step kinds' unit tests: a hand-built PlanState and PlanContext for a kind's
// plan(), a playbook step parsed through the kind's own fields, a Run built from ApplyDeps over an
// executor (the dry-run one, or a scripted stand-in for a real server), and a restore context.
import { z } from 'zod';
import type { OperatorFacts, Queryable, RoleInfo, ServerFacts } from '../../../src/checks/types.js';
import { nodeLabel, resolveConnParams } from '../../../src/pg/conninfo.js';
import { DryRunExecutor, loggedSession, type Executor, type Recorded, type ResultSet } from '../../../src/playbook/executor.js';
import type { Plan, PlanInput, PlanOptions, PlanState, PlanStep } from '../../../src/playbook/model.js';
import { checkSource, type RestoreSource } from '../../../src/playbook/restore-source.js';
import { Run, type ApplyDeps } from '../../../src/playbook/run.js';
import type { Statement } from '../../../src/playbook/sql.js';
import type { Draft, FieldsOf, PlanContext, PlaybookStepOf, RestoreContext } from '../../../src/playbook/steps/kind.js';
import type { ReportStep } from '../../../src/record/cutoff-report.js';

export function roleInfo(name: string, oid: number, over: Partial<RoleInfo> = {}): RoleInfo {
  return {
    oid,
    name,
    superuser: false,
    inherit: true,
    createRole: false,
    createDb: false,
    canLogin: true,
    replication: false,
    bypassRls: false,
    connectionLimit: -1,
    validUntil: null,
    expired: false,
    ...over,
  };
}

export const MALLORY = roleInfo('mallory', 16500);
/** A name that must be quoted everywhere it goes. */
export const QUOTED = roleInfo('x"y', 16501);

export const SUPERUSER: OperatorFacts = {
  user: 'postgres',
  superuser: true,
  createRole: true,
  signalBackend: true,
  memberOfTarget: true,
  readHba: true,
  reload: true,
  statFile: true,
};
/** A CREATEROLE operator that is no superuser. */
export const ADMIN: OperatorFacts = { ...SUPERUSER, user: 'ops', superuser: false, memberOfTarget: false };

export const PARAMS = resolveConnParams({ dsn: 'postgresql://postgres@db.example:5432/maindb' }, {});
export const NODE = nodeLabel(PARAMS);

export function server(over: Partial<ServerFacts> = {}): ServerFacts {
  return {
    version: 'PostgreSQL 16.4',
    versionNum: 160004,
    major: 16,
    inRecovery: false,
    hbaFile: '/data/pg_hba.conf',
    dataDirectory: '/data',
    ...over,
  };
}

/** Nothing of the role's anywhere: no prepared transaction, subscription or object; the HBA file writable. */
export function planState(over: Partial<PlanState> = {}): PlanState {
  const targets = over.targets ?? [MALLORY];
  return {
    server: server(),
    targets,
    prepared: [],
    subscriptions: [],
    ownedDatabases: targets.map((t) => ({ role: t.name, databases: [], shared: false })),
    hba: { file: '/data/pg_hba.conf', skip: null, perRole: Object.fromEntries(targets.map((t) => [t.name, null])), present: [] },
    adminOf: targets.map((t) => t.name),
    administered: [],
    ...over,
  };
}

/** The same state on a hot standby. */
export function standbyState(over: Partial<PlanState> = {}): PlanState {
  const st = planState(over);
  return { ...st, server: { ...st.server, inRecovery: true } };
}

export function planOptions(over: Partial<PlanOptions> = {}): PlanOptions {
  return {
    rotatePassword: false,
    stripPrivileges: true,
    settle: { timeoutS: 10, hiddenGraceMs: 250, intervalMs: 20 },
    reassignTo: null,
    hbaFile: '/data/pg_hba.conf',
    includeCreated: false,
    ...over,
  };
}

/** A playbook step of the kind as the schema gives it (its defaults filled in). */
export function playbookStep<F extends FieldsOf>(
  kind: { action: string; fields: F },
  fields: Record<string, unknown> = {},
): PlaybookStepOf<F> {
  const shape = z.strictObject({ action: z.literal(kind.action), description: z.string().optional(), ...kind.fields(z) });
  return shape.parse({ action: kind.action, ...fields }) as PlaybookStepOf<F>;
}

export interface PlanSetup {
  state?: PlanState;
  operator?: OperatorFacts;
  options?: Partial<PlanOptions>;
  input?: Partial<PlanInput>;
}

export interface Planned {
  steps: Draft[];
  warnings: string[];
  exposure: string[];
}

/** A kind's plan() against a hand-built context: the drafts it adds, its warnings and exposure. */
export function planWith(kind: { plan?: (ctx: PlanContext, step: never) => void }, step: unknown = {}, setup: PlanSetup = {}): Planned {
  const state = setup.state ?? planState();
  const out: Planned = { steps: [], warnings: [], exposure: [] };
  const ctx: PlanContext = {
    playbook: 'test-playbook',
    state,
    operator: setup.operator ?? SUPERUSER,
    params: PARAMS,
    input: { roles: state.targets.map((t) => t.name), ...setup.input },
    options: planOptions(setup.options),
    targets: state.targets,
    standby: state.server.inRecovery,
    add: (d) => out.steps.push(d),
    warn: (t) => out.warnings.push(t),
    expose: (t) => out.exposure.push(t),
  };
  if (!kind.plan) throw new Error('this kind has no plan()');
  kind.plan(ctx, step as never);
  return out;
}

/** Drafts as the planner numbers them. */
export function planSteps(drafts: readonly Draft[], node = NODE): PlanStep[] {
  return drafts.map((d, index) => ({ index, node, ...d, skip: d.skip ?? null }));
}

export function planOf(drafts: readonly Draft[], setup: PlanSetup = {}): Plan {
  const state = setup.state ?? planState();
  return {
    schemaVersion: 1,
    playbook: { name: 'test-playbook', file: 'test-playbook.yaml', reason: 'compromise', description: null },
    node: NODE,
    createdAt: new Date(0).toISOString(),
    server: { version: state.server.version, major: state.server.major, inRecovery: state.server.inRecovery },
    operator: setup.operator ?? SUPERUSER,
    roles: [],
    options: planOptions(setup.options),
    steps: planSteps(drafts),
    warnings: [],
    exposure: [],
  };
}

/** A reader with no rows for anything; `queries` lists what was asked. */
export function reader(answer: (sql: string, values?: unknown[]) => Record<string, unknown>[] | Error = () => []): Queryable & {
  queries: string[];
} {
  const queries: string[] = [];
  return {
    queries,
    query: (async (sql: string, values?: unknown[]) => {
      queries.push(sql);
      const a = answer(sql, values);
      if (a instanceof Error) throw a;
      // as pg: a simple query of several statements (sql.ts joins them with ';\n') has a result each
      const statements = sql.split(';\n').length;
      return statements > 1 ? Array.from({ length: statements }, () => ({ rows: a })) : { rows: a };
    }) as Queryable['query'],
  };
}

export interface RunSetup extends PlanSetup {
  reader?: Queryable;
  deps?: Partial<ApplyDeps>;
}

/** A Run over `exec` whose report holds the drafts as planned steps (so a step sees the others, as in apply). */
export function runOf(exec: Executor, drafts: readonly Draft[], setup: RunSetup = {}): Run {
  const state = setup.state ?? planState();
  const operator = setup.operator ?? SUPERUSER;
  return new Run({
    plan: planOf(drafts, setup),
    state,
    exec,
    reader: setup.reader ?? reader(),
    params: PARAMS,
    operator: { user: operator.user, osUser: 'ops', host: 'box', superuser: operator.superuser },
    hbaServerLock: () => Promise.resolve({ release: () => Promise.resolve() }),
    ...setup.deps,
  });
}

/** What apply.ts records as a step's `executed`: the distinct statements logged, in order. */
export function executed(log: readonly Recorded[]): string[] {
  return [...new Set(log.map((l) => l.sql))];
}

export interface Applied {
  detail: string;
  run: Run;
  step: ReportStep;
  log: Recorded[];
}

/** A kind's apply() of drafts[at], in a dry run over the drafts as the plan. */
export async function dryApply(
  kind: { apply: (run: Run, step: ReportStep) => Promise<string> },
  drafts: readonly Draft[],
  at = 0,
  setup: RunSetup = {},
): Promise<Applied> {
  const exec = new DryRunExecutor();
  const run = runOf(exec, drafts, setup);
  const step = run.report.steps[at]!;
  const detail = await kind.apply(run, step);
  return { detail, run, step, log: exec.log };
}

/** A stand-in for the real executor: answers each statement from `answer`, logs like the real one. */
export class Scripted implements Executor {
  readonly dryRun = false;
  readonly log: Recorded[] = [];
  constructor(private readonly answer: (sql: string, values?: unknown[]) => ResultSet[] | Error = () => []) {}
  async run(step: PlanStep, stmt: Statement | string, opts: { database?: string | null; values?: unknown[] } = {}): Promise<ResultSet[]> {
    const sql = typeof stmt === 'string' ? stmt : stmt.display;
    this.log.push({ step: step.index, action: step.action, database: opts.database === undefined ? step.database : opts.database, sql });
    const a = this.answer(sql, opts.values);
    if (a instanceof Error) throw a;
    return a;
  }
  async isolated(step: PlanStep, database: string) {
    return loggedSession(this, step, database);
  }
  async writeFile(step: PlanStep, _file: string, _content: string, note: string): Promise<null> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
    return null;
  }
  async restoreFile(step: PlanStep, _file: string, _backup: string, note: string): Promise<void> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
  }
  async signalBackends(): Promise<number[]> {
    return [];
  }
  async close(): Promise<void> {}
}

export const rows = (...r: Record<string, unknown>[]): ResultSet => ({ command: 'SELECT', rowCount: r.length, rows: r });

export function sqlError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A (real-run) report as restore reads it: mallory, LOGIN with no connection limit before. */
export function source(steps: Record<string, unknown>[], over: Record<string, unknown> = {}): RestoreSource {
  return checkSource(
    {
      schemaVersion: 1,
      dryRun: false,
      roles: [
        {
          name: 'mallory',
          oid: MALLORY.oid,
          before: { canLogin: true, superuser: false, createRole: false, connectionLimit: -1, validUntil: null },
        },
      ],
      hba: null,
      steps: steps.map((s, index) => ({ index, detail: null, sql: [], role: null, database: null, ...s })),
      ...over,
    },
    'report.json',
  );
}

export function restoreCtx(report: RestoreSource, over: Partial<RestoreContext> = {}): RestoreContext {
  return {
    report,
    role: report.roles[0]!.name,
    entry: report.roles[0]!,
    hbaContent: null,
    standby: false,
    stripped: false,
    unbacked: false,
    ...over,
  };
}
