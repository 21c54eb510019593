// What restore accepts as a cutoff report (a --report file, or the report closing a record): every
// value it turns into SQL is checked for its type, so `"superuser": "false"` (a string) can never
// become ALTER ROLE ... SUPERUSER.
import { z } from 'zod';
import { ExitCode, PgrevokeError } from '../errors.js';
import { MAX_ROLE_NAME_BYTES } from '../util/role-name.js';

const Before = z.object({
  canLogin: z.boolean(),
  superuser: z.boolean(),
  createRole: z.boolean(),
  connectionLimit: z
    .number()
    .int()
    .min(-1)
    .max(2 ** 31 - 1),
  validUntil: z.string().nullable(),
});

const Source = z.looseObject({
  schemaVersion: z.literal(1),
  dryRun: z.boolean(),
  roles: z.array(
    z.looseObject({
      name: z.string().refine((n) => n.length > 0 && Buffer.byteLength(n) <= MAX_ROLE_NAME_BYTES, 'a role name of 1 to 63 bytes'),
      oid: z.number().int().positive(),
      before: Before,
      beforeFrom: z.string().nullable().optional(),
    }),
  ),
  hba: z.looseObject({ file: z.string().min(1), backup: z.string().nullable(), lines: z.array(z.string()) }).nullable(),
  steps: z.array(
    z.looseObject({
      action: z.string(),
      status: z.string(),
      detail: z.string().nullable(),
      sql: z.array(z.string()),
      index: z.number().int().nonnegative().optional(),
      role: z.string().nullable().optional(),
      database: z.string().nullable().optional(),
      /** A `sql` step: what restore runs to undo it (from a record only). */
      inverse: z.array(z.string()).optional(),
    }),
  ),
});

export type RestoreSource = z.infer<typeof Source>;

/** The report section, typed; anything else is a usage error naming the field (exit 2, nothing changed). */
export function checkSource(doc: unknown, where: string): RestoreSource {
  const res = Source.safeParse(doc);
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  throw new PgrevokeError(`${where} is not a pgrevoke cutoff report restore can trust: ${field || 'the document'}: ${issue.message}`, {
    exitCode: ExitCode.USAGE,
    hint: 'pass the file written by cutoff --report (schemaVersion 1), unedited',
  });
}
