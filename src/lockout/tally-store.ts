// The failure counts below the threshold in <state>/lockout-tally.json, so that a guard restart
// (which the attacker may cause, or a deploy) does not start them afresh: guard keeps its log
// position, so failures read before the restart are never read again. Per cluster (the nodes of
// the engine that wrote it, as lockouts are scoped), per sort and key the failure times still
// inside the window. A file of its own beside lockouts.json: a bad tally is set aside with a
// warning (counting starts afresh), and the lockouts themselves are never lost with it. Changed
// under its own lock (<state>/locks/lockout-tally.lock), written with writeFileSafe.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ExitCode, PgrevokeError } from '../errors.js';
import { acquireFileLock } from '../record/file-lock.js';
import { writeFileSafe } from '../record/safe-write.js';
import { openStateDir } from '../record/state-dir.js';
import { fieldName } from '../util/yaml.js';
import { MAX_THRESHOLD, MAX_TRACKED_KEYS, type TallyWindows } from './policy.js';
import { readStateJson } from './store.js';

export const TALLY_FILE = 'lockout-tally.json';
export const TALLY_SCHEMA_VERSION = 1;
/** Clusters kept in the file (a fleet's guards share the state directory). */
const MAX_CLUSTERS = 1_000;
/** Bounded by the tally's caps; anything far larger is not ours. */
const MAX_BYTES = 64 * 1024 * 1024;
const LOCK_WAIT_MS = 10_000;

/** One cluster's windows as on file. */
export interface TallyEntry extends TallyWindows {
  /** The node names of the engine that wrote it: it is restored by an engine sharing one of them. */
  nodes: string[];
  /** Its window: an entry whose latest time is older is dropped at the next write. */
  windowMs: number;
  written: string;
}

const Times = z.array(z.number().int().min(0).max(8.64e15)).max(MAX_THRESHOLD);
const Sort = z.array(z.tuple([z.string().min(1).max(1024), Times])).max(MAX_TRACKED_KEYS);
const Entry = z.strictObject({
  nodes: z.array(z.string().min(1).max(256)).min(1).max(1000),
  windowMs: z
    .number()
    .int()
    .min(1)
    .max(366 * 86_400_000),
  written: z.iso.datetime({ offset: true }),
  pairs: Sort,
  roles: Sort,
  addresses: Sort,
});
const TallySchema = z.strictObject({ schemaVersion: z.literal(TALLY_SCHEMA_VERSION), clusters: z.array(Entry).max(MAX_CLUSTERS) });

export function tallyRefused(file: string, why: string): PgrevokeError {
  return new PgrevokeError(`refusing the lockout counts ${file}: ${why}`, {
    exitCode: ExitCode.USAGE,
    hint: 'pgrevoke writes it itself (mode 0600); the failure counts below the threshold start afresh and the file is replaced at the next write (the lockouts, in lockouts.json, are untouched)',
  });
}

async function tallyPath(env: NodeJS.ProcessEnv): Promise<string> {
  return path.join(await openStateDir(env), TALLY_FILE);
}

/** The clusters' windows on file (none when there is no file); a hostile or malformed file throws, in one line. */
export async function readTally(env: NodeJS.ProcessEnv = process.env): Promise<TallyEntry[]> {
  const file = await tallyPath(env);
  const doc = await readStateJson(file, MAX_BYTES, (why) => tallyRefused(file, why));
  if (doc === undefined) return [];
  const res = TallySchema.safeParse(doc);
  if (res.success) return res.data.clusters;
  const issue = res.error.issues[0]!;
  throw tallyRefused(file, `${issue.path.length ? fieldName(issue.path) : 'the document'}: ${issue.message}`);
}

/**
 * Write `mine` in place of the entries of its nodes (another cluster's are kept, unless nothing in
 * them is inside its window any more), under the lock. A file refused on reading is replaced.
 */
export async function writeTally(mine: TallyEntry, now: number, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const locks = await openStateDir(env, 'locks');
  const lock = await acquireFileLock(path.join(locks, 'lockout-tally.lock'), LOCK_WAIT_MS, 'the lockout counts lock');
  try {
    const names = new Set(mine.nodes);
    const file = await tallyPath(env);
    let cur: TallyEntry[] = [];
    try {
      cur = await readTally(env);
    } catch {
      // refused (said at restore): replaced; a link planted there is removed, never followed
      if ((await fs.lstat(file).catch(() => null))?.isSymbolicLink()) await fs.unlink(file);
    }
    const live = (e: TallyEntry) => [...e.pairs, ...e.roles, ...e.addresses].some(([, times]) => times.some((t) => t >= now - e.windowMs));
    const others = cur.filter((e) => !e.nodes.some((n) => names.has(n)) && live(e)).slice(-(MAX_CLUSTERS - 1));
    const doc = { schemaVersion: TALLY_SCHEMA_VERSION, clusters: [...others, mine] };
    await writeFileSafe(file, `${JSON.stringify(doc)}\n`);
  } finally {
    await lock.release();
  }
}

/** The windows of the entries sharing a node with `nodes` (a cluster written under other names is not ours). */
export function tallyOf(entries: readonly TallyEntry[], nodes: readonly string[]): TallyWindows {
  const names = new Set(nodes);
  const out: TallyWindows = { pairs: [], roles: [], addresses: [] };
  for (const e of entries) {
    if (!e.nodes.some((n) => names.has(n))) continue;
    out.pairs.push(...e.pairs);
    out.roles.push(...e.roles);
    out.addresses.push(...e.addresses);
  }
  return out;
}
