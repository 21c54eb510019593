// What a step kind is: one object per playbook action (src/playbook/steps/<action>.ts) that owns
// its playbook fields, its plan, its apply and, where it has one, its inverse for restore. The
// planner, apply and restore are loops over these; nothing step-specific lives in them.
import type { z as Z } from 'zod';
import type { OperatorFacts, Queryable, RoleInfo } from '../../checks/types.js';
import type { ConnParams } from '../../pg/conninfo.js';
import type { ReportStep } from '../../record/cutoff-report.js';
import type { RestoreSource } from '../restore-source.js';
import type { PlanAction, PlanInput, PlanOptions, PlanState, PlanStep } from '../model.js';
import type { Run } from '../run.js';

/** A step's playbook fields, built with the zod it is given: a compiled playbook loads without zod. */
export type FieldsOf = (z: typeof Z) => Z.ZodRawShape;

/** A playbook step of a kind: its action, an optional description and its own fields. */
export type PlaybookStepOf<F extends FieldsOf> = { action: string; description?: string } & Z.infer<Z.ZodObject<ReturnType<F>>>;

/** A plan step as a kind adds it; the planner numbers it and names the node. */
export type Draft = Omit<PlanStep, 'index' | 'node' | 'skip'> & { skip?: string | null };

/** What a step's plan is made from: the collected state, read-only. */
export interface PlanContext {
  /** The playbook's name (for messages). */
  readonly playbook: string;
  readonly state: PlanState;
  readonly operator: OperatorFacts;
  readonly params: ConnParams;
  readonly input: PlanInput;
  readonly options: PlanOptions;
  readonly targets: readonly RoleInfo[];
  readonly standby: boolean;
  add(step: Draft): void;
  warn(text: string): void;
  /** Access the plan knowingly leaves open. */
  expose(text: string): void;
}

/** One role's part of a cutoff report, as restore reads it. */
export interface RestoreContext {
  report: RestoreSource;
  role: string;
  entry: RestoreSource['roles'][number];
  /** The recorded HBA file's content now (null: not readable, or no file in the report). */
  hbaContent: string | null;
  standby: boolean;
  /** A record shows the cutoff's ALTER stripped SUPERUSER/CREATEROLE. */
  stripped: boolean;
  /** No record in the state directory backs the report: restore runs nothing the report's text says. */
  unbacked: boolean;
}

/** What undoing one kind of step adds to a role's restore. */
export interface RestorePart {
  alter?: string | null;
  hba?: { file: string; content: string } | null;
  /** Statements of the playbook's own (a `sql` step's inverse), each in its database. */
  statements?: { database: string | null; sql: string; step: number }[];
  notes?: string[];
}

export interface StepKind<F extends FieldsOf = FieldsOf> {
  readonly action: PlanAction;
  /** Its playbook fields; absent for a step the plan adds on its own (await_replay). */
  readonly fields?: F;
  /** It may appear more than once in a playbook. */
  readonly repeatable?: boolean;
  /** Where it must stand in a playbook: the problem with its position `at`, or null. */
  order?(steps: readonly { action: string }[], at: number): string | null;
  /** The plan options it sets (timeouts, the reassign target). */
  options?(step: PlaybookStepOf<F>, input: PlanInput): Partial<PlanOptions>;
  /** Read what its plan needs beyond the common state (read-only). */
  collect?(q: Queryable, state: PlanState, step: PlaybookStepOf<F>): Promise<void>;
  /** Pure: its steps against the collected state. */
  plan?(ctx: PlanContext, step: PlaybookStepOf<F>): void;
  /** Steps for objects found again after containment (an attacker may have made new ones meanwhile). */
  refresh?(run: Run, have: readonly ReportStep[]): Promise<Draft[]>;
  /** Run it (a dry run records the same statements); returns the detail; throws StepSkipped to skip. */
  apply(run: Run, step: ReportStep): Promise<string>;
  /** A dry run runs it for real (read-only), so its status is done rather than planned. */
  readonly readOnly?: boolean;
  /** It still runs after the contain step failed (verification). */
  readonly afterFailedContain?: boolean;
  /** Its part of restoring one role. */
  inverse?(ctx: RestoreContext): RestorePart;
}

/** Thrown by a step's apply to be recorded as skipped, with the message as detail. */
export class StepSkipped extends Error {}

/** Thrown by a step's apply when the interrupt stopped it. */
export class Interrupted extends Error {}

/** The message for a step that must come after `action` in the playbook, or null. */
export function mustFollow(action: string) {
  return (steps: readonly { action: string }[], at: number): string | null => {
    const before = steps.findIndex((s) => s.action === action);
    return before >= 0 && at < before ? `"${steps[at]!.action}" must come after "${action}"` : null;
  };
}
