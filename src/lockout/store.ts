// The lockouts in <state>/lockouts.json: read (never through a link, refused when another user's
// or writable by others, validated by schema.ts), and changed only under the lockout lock
// (<state>/locks/lockouts.lock, src/record/file-lock.ts), each change re-read inside the lock, so
// two guards, or a guard and `pgrevoke unlock`, never write from a copy the other has changed.
// Written with writeFileSafe (temp file, fsync, rename; mode 0600).
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { acquireFileLock } from '../record/file-lock.js';
import { writeFileSafe } from '../record/safe-write.js';
import { readStateJson } from '../record/state-file.js';
import { openStateDir, stateDirPath } from '../record/state-dir.js';
import { checkStore, STORE_SCHEMA_VERSION, storeRefused } from './schema.js';
import type { Lockout } from './types.js';

export const STORE_FILE = 'lockouts.json';
/** The file is small (MAX_STORED lockouts of a few hundred bytes): anything far larger is not ours. */
const MAX_BYTES = 16 * 1024 * 1024;
/** A change holds the lock for one small fsync'd write. */
const LOCK_WAIT_MS = 10_000;

export function storePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDirPath(env), STORE_FILE);
}

export function newLockoutId(): string {
  return randomBytes(8).toString('hex');
}

/** The file's identity and size, to notice another process's change without reading it; null when absent. */
export async function storeStamp(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const st = await fs.lstat(storePath(env)).catch(() => null);
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : null;
}

// the state directory's safe JSON reader, also lockout-tally.json's (tally-store.ts imports it from here)
export { readStateJson } from '../record/state-file.js';

/** The lockouts on file (none when there is no file yet); a hostile file is exit 2, in one line. */
export async function readLockouts(env: NodeJS.ProcessEnv = process.env): Promise<Lockout[]> {
  const file = path.join(await openStateDir(env), STORE_FILE);
  const doc = await readStateJson(file, MAX_BYTES, (why) => storeRefused(file, why));
  return doc === undefined ? [] : checkStore(doc, file);
}

async function writeLockouts(list: readonly Lockout[], env: NodeJS.ProcessEnv): Promise<void> {
  const file = path.join(await openStateDir(env), STORE_FILE);
  await writeFileSafe(file, `${JSON.stringify({ schemaVersion: STORE_SCHEMA_VERSION, lockouts: list }, null, 1)}\n`);
}

/**
 * Change the lockouts under the lock: `fn` gets them as on file now and returns the new list (or
 * null: nothing to write) and a result.
 */
export async function updateLockouts<T>(
  fn: (list: Lockout[]) => { list: Lockout[] | null; result: T },
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  const locks = await openStateDir(env, 'locks');
  const lock = await acquireFileLock(path.join(locks, 'lockouts.lock'), LOCK_WAIT_MS, 'the lockout state lock');
  try {
    const { list, result } = fn(await readLockouts(env));
    if (list) await writeLockouts(list, env);
    return result;
  } finally {
    await lock.release();
  }
}
