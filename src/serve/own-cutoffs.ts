// Which cutoff records this service's deactivations wrote, and for whom: <state>/serve/own-cutoffs.jsonl
// (a --dry-run service keeps its own, as for the journal). A reactivation restores only these, so an
// identity provider's suspend and unsuspend never undoes a cutoff someone else made (a responder's
// `pgrevoke cutoff`). Written, fsync'd, before the deactivation's outcome is journaled: a crash in
// between reruns the cutoff, whose record is added in its turn.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openStateDir } from '../record/state-dir.js';
import { appendSafe } from '../record/safe-write.js';
import type { ServeEvent, ServeIdentity } from './types.js';

interface OwnLine {
  event: string;
  at: string;
  identity: ServeIdentity;
  record: string;
}

async function ledger(dryRun: boolean, env: NodeJS.ProcessEnv): Promise<string> {
  return path.join(await openStateDir(env, 'serve'), dryRun ? 'own-cutoffs-dry-run.jsonl' : 'own-cutoffs.jsonl');
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
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  await appendSafe(file, `${text.length && !text.endsWith('\n') ? '\n' : ''}${JSON.stringify(line)}\n`);
}

/** The records this service's deactivations of `identity` wrote. */
export async function ownCutoffs(identity: ServeIdentity, dryRun: boolean, env: NodeJS.ProcessEnv = process.env): Promise<Set<string>> {
  const text = await fs.readFile(await ledger(dryRun, env), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const out = new Set<string>();
  for (const l of text.split('\n')) {
    if (!l) continue;
    try {
      const line = JSON.parse(l) as OwnLine;
      if (typeof line.record === 'string' && line.identity && samePerson(identity, line.identity)) out.add(line.record);
    } catch {
      continue; // torn by a crash: its outcome was not journaled, the cutoff reruns
    }
  }
  return out;
}
