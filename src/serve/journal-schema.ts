// The journal's lines (journal.jsonl), checked with zod when the file is read back at start: a line
// that is JSON and not a journal line (disk damage, an editor, a hostile write as this user) is
// refused, naming file:line, never replayed as an event owed nor a bare TypeError.
import { z } from 'zod';
import type { EventOutcome, OutcomeStatus } from './queue.js';
import type { ServeEvent } from './types.js';

const STATUSES = [
  'contained',
  'exposed',
  'absent',
  'unmapped',
  'planned',
  'restored',
  'ignored',
  'nothing_to_restore',
  'not_restorable',
  'failed',
] as const satisfies readonly OutcomeStatus[];

const EventSchema = z.object({
  id: z.string().min(1),
  key: z.string().min(1),
  provider: z.enum(['scim', 'github']),
  action: z.enum(['deactivate', 'reactivate']),
  identity: z.object({ user: z.string().optional(), github: z.string().optional() }),
  summary: z.string(),
  receivedAt: z.string(),
}) satisfies z.ZodType<ServeEvent>;

const OutcomeSchema = z.object({
  status: z.enum(STATUSES),
  records: z.array(z.string()),
  detail: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.int().nonnegative(),
}) satisfies z.ZodType<EventOutcome>;

export const JournalLineSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('accepted'), event: EventSchema, roles: z.array(z.string().min(1)).nullable() }),
  z.object({ type: z.literal('attempt'), id: z.string(), at: z.string(), attempt: z.int().nonnegative(), error: z.string() }),
  z.object({ type: z.literal('done'), id: z.string(), at: z.string(), outcome: OutcomeSchema }),
]);

export type JournalLine = z.infer<typeof JournalLineSchema>;

/** One line read back: the line, or what is wrong with it (one line of text, for file:line). */
export function parseJournalLine(text: string): { line: JournalLine } | { wrong: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { wrong: `not JSON (${(err as Error).message})` };
  }
  const parsed = JournalLineSchema.safeParse(doc);
  if (parsed.success) return { line: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue?.path.join('.');
  return { wrong: `not a journal line (${where ? `${where}: ` : ''}${issue?.message ?? 'does not fit'})`.replace(/\s+/g, ' ') };
}
