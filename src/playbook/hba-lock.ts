// Every pg_hba.conf edit (cutoff's hba_reject, restore's hba_remove, the rollback on error rows)
// runs read, modify, write, reload and check under two locks, so that two operators, or a cutoff
// and a restore, never write from a copy read before the other's edit and lose its block:
//  - on this host, a lock file per edited file in the state directory (src/record/file-lock.ts);
//  - on the server, a session advisory lock taken on the session that reloads: operators on other
//    hosts, or other OS users (whose state directories differ), editing this node's file. It goes
//    with the session if pgrevoke dies.
// The file edited is the link's target: configuration management often links pg_hba.conf.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Queryable } from '../checks/types.js';
import { acquireFileLock, type HeldLock } from '../record/file-lock.js';
import { openStateDir } from '../record/state-dir.js';

/** The advisory lock key: the first 8 bytes of sha256('pgrevoke hba'), fixed for every version. */
export const HBA_LOCK_KEY = createHash('sha256').update('pgrevoke hba').digest().readBigInt64BE(0).toString();

/** How long either lock is waited for: an edit holds them for tens of milliseconds. */
export const HBA_LOCK_WAIT_MS = 10_000;

// SET LOCAL in the same simple query: the session's own lock_timeout (1 s for cutoff) is not the bound
const SERVER_LOCK_SQL = `SET LOCAL lock_timeout = '${HBA_LOCK_WAIT_MS}ms'; SELECT pg_advisory_lock(${HBA_LOCK_KEY})`;
const SERVER_UNLOCK_SQL = `SELECT pg_advisory_unlock(${HBA_LOCK_KEY})`;
const SERVER_HOLDER_SQL = `SELECT l.pid, a.application_name::text AS app, host(a.client_addr) AS addr
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid::bigint = $1 AND l.objid::bigint = $2`;

/** The local lock for one pg_hba.conf (its real path): held until released, or until this process dies. */
export async function lockHbaFile(target: string, env: NodeJS.ProcessEnv = process.env): Promise<HeldLock> {
  const dir = await openStateDir(env, 'locks');
  const name = `hba-${createHash('sha256').update(target).digest('hex').slice(0, 16)}.lock`;
  return acquireFileLock(path.join(dir, name), HBA_LOCK_WAIT_MS, `the pg_hba.conf lock for ${target} on this host`);
}

async function lockServer(client: Queryable): Promise<void> {
  try {
    await client.query(SERVER_LOCK_SQL);
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03') throw err;
    const key = BigInt.asUintN(64, BigInt(HBA_LOCK_KEY));
    const holder = (
      await client.query<{ pid: number; app: string | null; addr: string | null }>(SERVER_HOLDER_SQL, [
        String(key >> 32n),
        String(key & 0xffffffffn),
      ])
    ).rows[0];
    const who = holder
      ? `backend pid ${holder.pid}${holder.app ? ` (${holder.app})` : ''}${holder.addr ? ` from ${holder.addr}` : ''}`
      : 'another session';
    throw new Error(
      `${who} has held this server's pg_hba.conf lock for more than ${HBA_LOCK_WAIT_MS / 1000} s (another operator editing it); the file was not changed`,
      { cause: err },
    );
  }
}

/**
 * Run `fn(target)` under both locks; `target` is the real path of `file` (a link followed), to be
 * read afresh and written by `fn`. `client` is the session that reloads and checks.
 */
export async function withHbaLock<T>(
  client: Queryable,
  file: string,
  fn: (target: string) => Promise<T>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  const target = await fs.realpath(file);
  const local = await lockHbaFile(target, env);
  try {
    await lockServer(client);
    try {
      return await fn(target);
    } finally {
      // a broken session has released it already
      await client.query(SERVER_UNLOCK_SQL).catch(() => undefined);
    }
  } finally {
    await local.release();
  }
}
