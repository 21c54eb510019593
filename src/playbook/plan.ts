// A plan is data: the playbook's steps made concrete against the real server state, read-only
// (like pg-boss's dry-run), so the SQL it shows is the SQL apply would run. Each step kind plans
// its own steps (src/playbook/steps/); this is the loop.
import { isOpen } from '../checks/administered-roles.js';
import type { OperatorFacts } from '../checks/types.js';
import { nodeLabel, type ConnParams } from '../pg/conninfo.js';
import { planRole } from './collect.js';
import type { LoadedPlaybook } from './load.js';
import {
  PLAN_SCHEMA_VERSION,
  type BuildOptions,
  type Plan,
  type PlanInput,
  type PlanOptions,
  type PlanState,
  type PlanStep,
} from './model.js';
import type { PlanContext } from './steps/kind.js';
import { kindOf } from './steps/index.js';

export { nodeLabel };

/** Administered roles that are a way in and not among the targets: the plan leaves them open. */
function leftOpen(state: PlanState): string[] {
  const targetOids = state.targets.map((t) => t.oid);
  return state.administered
    .filter((r) => isOpen(r) && !targetOids.includes(r.oid))
    .map(
      (r) =>
        `${JSON.stringify(r.name)} (administered by ${JSON.stringify(r.via)}${r.likelyCreated ? ', created by it' : ''}; ${r.canLogin ? 'LOGIN' : 'NOLOGIN'}, ${r.sessions} session(s)) is not cut off: pass --include-created to contain it with ${JSON.stringify(r.of)}`,
    );
}

/** The run's options: the defaults, what each playbook step sets, and the flags over both. */
function planOptions(playbook: LoadedPlaybook, state: PlanState, input: PlanInput): PlanOptions {
  const options: PlanOptions = {
    rotatePassword: Boolean(input.rotatePassword),
    stripPrivileges: true,
    settle: { timeoutS: input.settleTimeoutS ?? 10, hiddenGraceMs: input.hiddenGraceMs ?? 250, intervalMs: 20 },
    reassignTo: input.reassignTo ?? null,
    hbaFile: state.hba.file,
    includeCreated: Boolean(input.includeCreated),
  };
  for (const ps of playbook.steps) Object.assign(options, kindOf(ps.action).options?.(ps as never, input));
  return options;
}

/** What the operator should know before applying (nothing here stops the cutoff). */
function generalWarnings(state: PlanState, operator: OperatorFacts, input: PlanInput): string[] {
  const major = state.server.major;
  const out: string[] = [];
  if (input.includeCreated && major < 16)
    out.push(
      `PostgreSQL ${major} does not record which roles a role created: --include-created finds only roles the targets hold ADMIN OPTION on`,
    );
  if (!operator.superuser)
    out.push(
      `${operator.user} is not a superuser: a backend still hidden after the grace period cannot be terminated (it has no role yet); exposure would remain`,
    );
  return out;
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
  const options = planOptions(playbook, state, input);
  const steps: PlanStep[] = [];
  const warnings = generalWarnings(state, operator, input);
  const exposure = leftOpen(state);
  const ctx: PlanContext = {
    playbook: playbook.name,
    state,
    operator,
    params,
    input,
    options,
    targets: state.targets,
    standby: state.server.inRecovery,
    add: (s) => steps.push({ index: steps.length, node, skip: null, ...s }),
    warn: (text) => warnings.push(text),
    expose: (text) => exposure.push(text),
  };
  for (const ps of playbook.steps) kindOf(ps.action).plan?.(ctx, ps as never);
  return {
    schemaVersion: PLAN_SCHEMA_VERSION,
    playbook: { name: playbook.name, file: playbook.file, reason: playbook.reason, description: playbook.description ?? null },
    node,
    createdAt: (opts.now ?? new Date()).toISOString(),
    server: { version: state.server.version, major: state.server.major, inRecovery: state.server.inRecovery },
    operator,
    roles: state.targets.map((t) => planRole(state, t)),
    options,
    steps,
    warnings,
    exposure,
  };
}
