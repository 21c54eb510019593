// The SCIM users, one JSON file in the serve state directory (E's <state>/serve): an identity
// provider looks a user up, creates it, and much later deactivates it by the id we gave, across any
// number of restarts, so the users must outlive the process. Written whole with writeFileSafe
// (temp file, fsync, rename, 0600, never through a link); read without following a link, refused
// when another user's or writable by others, and checked with zod (store-schema.ts). Changes run one
// at a time per file in this process (a reloaded handler over the same directory waits its turn);
// one `pgrevoke serve` owns a state directory.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileSafe } from '../../record/safe-write.js';
import { readStateJson } from '../../record/state-file.js';
import { ScimFailure } from './errors.js';
import { STORE_SCHEMA_VERSION, StoreFileSchema, type StoredUser } from './store-schema.js';

export const USERS_FILE = 'scim-users.json';
/** --dry-run keeps its own users: a rehearsal's deactivations must not make a real one look done already. */
export const DRY_RUN_USERS_FILE = 'scim-users.dry-run.json';
/** Far more than any directory's users take (a user is under 2 KiB): anything larger is not ours. */
const MAX_BYTES = 64 * 1024 * 1024;

/** The store cannot be used: every request answers 500 with this, nothing is reset. */
function refused(file: string, why: string): ScimFailure {
  return new ScimFailure(500, null, `the SCIM user store ${file} cannot be used: ${why}; nothing was changed`);
}

async function stampOf(file: string): Promise<string> {
  const st = await fs.lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'absent';
}

async function readUsers(file: string): Promise<StoredUser[]> {
  const doc = await readStateJson(file, MAX_BYTES, (why, r) =>
    refused(file, r.kind === 'size' ? `it is ${r.size} bytes, far more than users take` : why),
  );
  if (doc === undefined) return [];
  const parsed = StoreFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refused(file, `it does not fit the schema (${issue?.path.join('.') || 'top level'}: ${issue?.message})`);
  }
  return parsed.data.users;
}

/** The change each file is waiting on, so that changes of one file never interleave. */
const tails = new Map<string, Promise<unknown>>();

function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (tails.get(key) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => undefined);
  tails.set(key, tail);
  // the map keeps only files with something in flight
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return run;
}

export interface StoreChange<T> {
  /** The users to write, or null: nothing changed. */
  users: StoredUser[] | null;
  result: T;
}

export class UserStore {
  readonly file: string;
  private cache: { stamp: string; users: StoredUser[] } | null = null;

  constructor(dir: string, dryRun: boolean) {
    this.file = path.resolve(dir, dryRun ? DRY_RUN_USERS_FILE : USERS_FILE);
  }

  private async current(): Promise<StoredUser[]> {
    const stamp = await stampOf(this.file);
    if (this.cache?.stamp !== stamp) this.cache = { stamp, users: await readUsers(this.file) };
    return this.cache.users;
  }

  /**
   * Run `fn` over a copy of the users as on file, alone (no other change of this file runs
   * meanwhile, so the enqueue it awaits sees the state it decided on), then write what it returns.
   */
  update<T>(fn: (users: StoredUser[]) => Promise<StoreChange<T>>): Promise<T> {
    return oneAtATime(this.file, async () => {
      const { users, result } = await fn(structuredClone(await this.current()));
      if (users) await this.write(users);
      return result;
    });
  }

  /**
   * The users as on file, shared and never to be changed (a change works on its own copy, and a
   * write replaces the array). Not in turn with the changes: a look-up never holds up a
   * deactivation queued behind it; it sees the file before or after a change, each whole (written
   * by rename, and the cache is checked against the file's inode, size and mtime on every read).
   */
  read(): Promise<readonly StoredUser[]> {
    return this.current();
  }

  private async write(users: StoredUser[]): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileSafe(this.file, `${JSON.stringify({ schemaVersion: STORE_SCHEMA_VERSION, users }, null, 1)}\n`);
    this.cache = { stamp: await stampOf(this.file), users };
  }
}
