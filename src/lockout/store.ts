// The lockouts in <state>/lockouts.json: read (never through a link, refused when another user's
// or writable by others, validated by schema.ts), and changed only under the lockout lock
// (<state>/locks/lockouts.lock, src/record/file-lock.ts), each change re-read inside the lock, so
// two guards, or a guard and `pgrevoke unlock`, never write from a copy the other has changed.
// Written with writeFileSafe (temp file, fsync, rename; mode 0600).
import { randomBytes } from 'node:crypto';
import { constants as C, promises as fs } from 'node:fs';
import path from 'node:path';
import { acquireFileLock } from '../record/file-lock.js';
import { writeFileSafe } from '../record/safe-write.js';
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

/**
 * The JSON document in `file` of the state directory (undefined when there is no file): never
 * through a link, refused (`refuse(why)`) when another user's, writable by others, over `maxBytes`
 * or not JSON. Shared by lockouts.json and lockout-tally.json.
 */
export async function readStateJson(file: string, maxBytes: number, refuse: (why: string) => Error): Promise<unknown> {
  let h: fs.FileHandle;
  try {
    h = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw refuse('it is a symbolic link');
    throw err;
  }
  try {
    const st = await h.stat();
    const me = process.getuid?.();
    if (!st.isFile()) throw refuse('it is not a regular file');
    if (me !== undefined && st.uid !== me) throw refuse(`it belongs to uid ${st.uid}, not to this user`);
    if (st.mode & 0o022) throw refuse(`it is writable by its group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`);
    if (st.size > maxBytes) throw refuse(`it is ${st.size} bytes, far more than pgrevoke writes there`);
    try {
      return JSON.parse(await h.readFile('utf8')) as unknown;
    } catch (err) {
      throw refuse(`it is not JSON (${(err as Error).message})`);
    }
  } finally {
    await h.close();
  }
}

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
