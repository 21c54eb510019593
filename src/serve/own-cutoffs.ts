// Which cutoff records this service's deactivations wrote, and for whom: <state>/serve/own-cutoffs.jsonl
// (a --dry-run service keeps its own, as for the journal). A reactivation restores only these, so an
// identity provider's suspend and unsuspend never undoes a cutoff someone else made (a responder's
// `pgrevoke cutoff`). Written, fsync'd, before the deactivation's outcome is journaled: a crash in
// between reruns the cutoff, whose record is added in its turn. Each line is checked with zod when
// read (a bad one is refused, naming file:line, as the journal's are), and at each start the file is
// compacted: a line is kept while its record still has a role not restored, or within journal_keep.
import path from 'node:path';
import { z } from 'zod';
import { usageError } from '../errors.js';
import { readRecords, type CutoffRecordFile } from '../record/journal.js';
import { readStateText } from '../record/state-file.js';
import { openStateDir } from '../record/state-dir.js';
import { appendSafe, writeFileSafe } from '../record/safe-write.js';
import type { ServeEvent, ServeIdentity } from './types.js';

const OwnLineSchema = z.object({
  event: z.string(),
  at: z.string(),
  identity: z.object({ user: z.string().optional(), github: z.string().optional() }),
  record: z.string().min(1),
});
type OwnLine = z.infer<typeof OwnLineSchema>;

/** Compaction keeps it small; a file far larger than this is not ours. */
const MAX_LEDGER_BYTES = 256 * 1024 * 1024;

async function ledger(dryRun: boolean, env: NodeJS.ProcessEnv): Promise<string> {
  return path.join(await openStateDir(env, 'serve'), dryRun ? 'own-cutoffs-dry-run.jsonl' : 'own-cutoffs.jsonl');
}

/** The ledger's lines; a torn last line (no newline after it: a crash mid-append, its outcome never journaled) is skipped. */
async function readLedger(file: string): Promise<{ lines: OwnLine[]; torn: boolean }> {
  const text =
    (await readStateText(file, MAX_LEDGER_BYTES, (why) =>
      usageError(
        `${file} cannot be used: ${why}: the service cannot tell which cutoffs are its own`,
        'move the file aside (a reactivation then restores nothing), or give it back to this user with mode 0600',
      ),
    )) ?? '';
  const torn = text.length > 0 && !text.endsWith('\n');
  const all = text.split('\n');
  const lines: OwnLine[] = [];
  for (const [i, l] of all.entries()) {
    if (!l) continue;
    let wrong: string;
    try {
      const parsed = OwnLineSchema.safeParse(JSON.parse(l));
      if (parsed.success) {
        lines.push(parsed.data);
        continue;
      }
      const issue = parsed.error.issues[0];
      wrong = `not an own-cutoffs line (${issue?.path.join('.') || 'top level'}: ${issue?.message ?? 'does not fit'})`;
    } catch (err) {
      wrong = `not JSON (${(err as Error).message})`;
    }
    if (torn && i === all.length - 1) continue;
    throw usageError(
      `${file}:${i + 1} is ${wrong.replace(/\s+/g, ' ')}: the service cannot tell which cutoffs are its own`,
      'fix or remove that line (a reactivation then restores nothing from its record), or move the file aside',
    );
  }
  return { lines, torn };
}

/** The same person: the same SCIM userName, or the same GitHub login (case-insensitive, as GitHub's are). */
function samePerson(a: ServeIdentity, b: ServeIdentity): boolean {
  if (a.user !== undefined && a.user === b.user) return true;
  return a.github !== undefined && b.github !== undefined && a.github.toLowerCase() === b.github.toLowerCase();
}

/** Keep the record a deactivation's cutoff wrote (durable before this resolves). */
export async function addOwnCutoff(
  event: ServeEvent,
  record: string,
  dryRun: boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const line: OwnLine = { event: event.id, at: new Date().toISOString(), identity: event.identity, record };
  const file = await ledger(dryRun, env);
  // after a line torn by a crash, start on a line of its own
  const text = (await readStateText(file, MAX_LEDGER_BYTES, (why) => new Error(why)).catch(() => undefined)) ?? '';
  await appendSafe(file, `${text.length && !text.endsWith('\n') ? '\n' : ''}${JSON.stringify(line)}\n`);
}

/** The records this service's deactivations of `identity` wrote. */
export async function ownCutoffs(identity: ServeIdentity, dryRun: boolean, env: NodeJS.ProcessEnv = process.env): Promise<Set<string>> {
  const { lines } = await readLedger(await ledger(dryRun, env));
  return new Set(lines.filter((l) => samePerson(identity, l.identity)).map((l) => l.record));
}

/** A record with a role on a node that no restore has used: a reactivation may still want it. */
function unrestored(rec: CutoffRecordFile): boolean {
  return rec.begin.nodes.some((n) => n.plan.roles.some((r) => !rec.restored.some((x) => x.node === n.node && x.role === r.name)));
}

/**
 * At start (before the worker runs): read the ledger back (a bad line refuses the start) and rewrite
 * it (temp file, fsync, rename) without the lines whose record every role was restored from, or is
 * gone, and that are older than `keepMs`; a line of unknown time is kept. Left as it is when nothing drops.
 */
export async function compactOwnCutoffs(
  opts: { dryRun: boolean; keepMs: number },
  env: NodeJS.ProcessEnv = process.env,
  now = Date.now(),
): Promise<void> {
  const file = await ledger(opts.dryRun, env);
  const { lines, torn } = await readLedger(file);
  if (!lines.length && !torn) return;
  const live = new Set((await readRecords(env)).filter(unrestored).map((r) => r.file));
  const kept = lines.filter((l) => live.has(l.record) || !(Date.parse(l.at) < now - opts.keepMs));
  if (kept.length === lines.length && !torn) return;
  await writeFileSafe(file, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
}
