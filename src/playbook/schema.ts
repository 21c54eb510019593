// The playbook schema and the YAML parser: source ranges are kept so that an invalid playbook is a
// usage error (exit 2) naming the file, the line and the field. Each step kind brings its own
// fields and its own rule of where it may stand (src/playbook/steps/); only the rules about the
// playbook as a whole are here.
import { z } from 'zod';
import { parseYamlWith } from '../util/yaml.js';
import { AUDIT_REASONS } from '../record/audit.js';
import type { StepAction } from './model.js';
import type { FieldsOf } from './steps/kind.js';
import { STEP_KINDS } from './steps/index.js';

const step = <A extends string, F extends FieldsOf>(kind: { action: A; fields: F }) =>
  z.strictObject({ action: z.literal(kind.action), description: z.string().optional(), ...(kind.fields(z) as ReturnType<F>) });

const K = STEP_KINDS;

export const StepSchema = z.discriminatedUnion('action', [
  step(K.snapshot),
  step(K.hba_reject),
  step(K.contain),
  step(K.settle),
  step(K.rollback_prepared),
  step(K.check_locks),
  step(K.disable_subscriptions),
  step(K.reassign_owned),
  step(K.drop_owned),
  step(K.drop_role),
  step(K.sql),
  step(K.verify),
]);
export type PlaybookStep = z.infer<typeof StepSchema>;

// the schema and the model name the same actions
const _same: [StepAction, PlaybookStep['action']] = ['' as PlaybookStep['action'], '' as StepAction];
void _same;

export const PlaybookSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, - and _'),
    description: z.string().optional(),
    reason: z.enum(AUDIT_REASONS),
    steps: z.array(StepSchema).min(1),
  })
  .superRefine((p, ctx) => {
    const contains = p.steps.map((s, i) => (s.action === 'contain' ? i : -1)).filter((i) => i >= 0);
    if (contains.length === 0) ctx.addIssue({ code: 'custom', path: ['steps'], message: 'a playbook needs one "contain" step' });
    if (contains.length > 1) ctx.addIssue({ code: 'custom', path: ['steps', contains[1]!, 'action'], message: 'only one "contain" step' });
    p.steps.forEach((s, i) => {
      const kind = STEP_KINDS[s.action] as {
        repeatable?: boolean;
        order?: (steps: readonly { action: string }[], at: number) => string | null;
      };
      const first = p.steps.findIndex((o) => o.action === s.action);
      if (first !== i && s.action !== 'contain' && !kind.repeatable)
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'action'], message: `"${s.action}" appears twice` });
      const misplaced = kind.order?.(p.steps, i);
      if (misplaced) ctx.addIssue({ code: 'custom', path: ['steps', i, 'action'], message: misplaced });
    });
  });
export type Playbook = z.infer<typeof PlaybookSchema>;

export interface LoadedPlaybook extends Playbook {
  /** The file it came from. */
  file: string;
}

/** Parse and validate playbook text; errors name file, line and field. */
export function parsePlaybook(text: string, file: string): LoadedPlaybook {
  const playbook = parseYamlWith(text, file, PlaybookSchema, { what: 'playbook', hint: 'see the shipped playbooks in playbooks/' });
  return { ...playbook, file };
}
