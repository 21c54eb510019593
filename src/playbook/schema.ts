// The playbook schema and the YAML parser: source ranges are kept so that an invalid playbook is a
// usage error (exit 2) naming the file, the line and the field.
import { z } from 'zod';
import { parseYamlWith } from '../util/yaml.js';
import { AUDIT_REASONS } from '../record/audit.js';

const step = <A extends string, S extends z.ZodRawShape>(action: A, shape: S) =>
  z.strictObject({ action: z.literal(action), description: z.string().optional(), ...shape });

export const StepSchema = z.discriminatedUnion('action', [
  step('snapshot', {}),
  step('hba_reject', {}),
  step('contain', {
    /** Also NOSUPERUSER NOCREATEROLE for a target that has either (default true). */
    strip_privileges: z.boolean().default(true),
    rotate_password: z.boolean().default(false),
  }),
  step('settle', {
    timeout_s: z.number().positive().max(3600).default(10),
    hidden_grace_ms: z.number().int().nonnegative().max(3_600_000).default(250),
    interval_ms: z.number().int().positive().max(10_000).default(20),
  }),
  step('rollback_prepared', {}),
  step('check_locks', {}),
  step('disable_subscriptions', {}),
  step('reassign_owned', { to: z.string().min(1).nullable().default(null) }),
  step('drop_owned', {}),
  step('drop_role', {}),
  step('verify', {}),
]);
export type PlaybookStep = z.infer<typeof StepSchema>;
export type StepAction = PlaybookStep['action'];

export const PlaybookSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, - and _'),
    description: z.string().optional(),
    reason: z.enum(AUDIT_REASONS),
    steps: z.array(StepSchema).min(1),
  })
  .superRefine((p, ctx) => {
    const at = (action: StepAction) => p.steps.findIndex((s) => s.action === action);
    const contains = p.steps.map((s, i) => (s.action === 'contain' ? i : -1)).filter((i) => i >= 0);
    if (contains.length === 0) ctx.addIssue({ code: 'custom', path: ['steps'], message: 'a playbook needs one "contain" step' });
    if (contains.length > 1) ctx.addIssue({ code: 'custom', path: ['steps', contains[1]!, 'action'], message: 'only one "contain" step' });
    const containAt = contains[0] ?? -1;
    p.steps.forEach((s, i) => {
      const dup = p.steps.findIndex((o) => o.action === s.action);
      if (dup !== i && s.action !== 'contain')
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'action'], message: `"${s.action}" appears twice` });
      const afterContain = [
        'settle',
        'rollback_prepared',
        'check_locks',
        'disable_subscriptions',
        'reassign_owned',
        'drop_owned',
        'drop_role',
      ];
      if (afterContain.includes(s.action) && containAt >= 0 && i < containAt)
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'action'], message: `"${s.action}" must come after "contain"` });
    });
    // pg_reload_conf() signals every backend; the signal cuts short the sleep of one in the
    // post-authentication window, which then runs as the role before it can be terminated.
    const hba = at('hba_reject');
    const settleAt = at('settle');
    const mustFollow = settleAt >= 0 ? settleAt : containAt;
    if (hba >= 0 && mustFollow >= 0 && hba < mustFollow)
      ctx.addIssue({
        code: 'custom',
        path: ['steps', hba, 'action'],
        message: `"hba_reject" must come after "${settleAt >= 0 ? 'settle' : 'contain'}": the configuration reload wakes backends sleeping in the post-authentication window, which would then run as the role`,
      });
    const drop = at('drop_role');
    if (drop >= 0 && (at('reassign_owned') < 0 || at('drop_owned') < 0 || at('reassign_owned') > drop || at('drop_owned') > drop))
      ctx.addIssue({
        code: 'custom',
        path: ['steps', drop, 'action'],
        message: '"drop_role" needs "reassign_owned" and "drop_owned" before it',
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
