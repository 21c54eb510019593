// Every pg_hba.conf edit (cutoff's hba_reject, restore's hba_remove, the rollback on error rows)
// runs read, modify, write, reload and check under two locks, so that two operators, or a cutoff
// and a restore, never write from a copy read before the other's edit and lose its block:
//  - on this host, a lock file per edited file in the state directory (src/record/file-lock.ts);
//  - on the server, a session advisory lock: operators on other hosts, or other OS users (whose
//    state directories differ), editing this node's file. Advisory locks belong to a database, and
//    operators connect to whichever they like, so it is taken on a session of its own in one fixed
//    database, template1 (postgres where template1 refuses connections). It goes with the session
//    if pgrevoke dies.
// The file edited is the link's target: configuration management often links pg_hba.conf.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describeError } from '../errors.js';
import { connect, type Client } from '../pg/connect.js';
import type { ConnParams } from '../pg/conninfo.js';
import { acquireFileLock, type HeldLock } from '../record/file-lock.js';
import { openStateDir } from '../record/state-dir.js';

/** The advisory lock key: the first 8 bytes of sha256('pgrevoke hba'), fixed for every version. */
export const HBA_LOCK_KEY = createHash('sha256').update('pgrevoke hba').digest().readBigInt64BE(0).toString();

/** Where the server lock is taken, in order: template1 exists on every cluster; postgres if template1 refuses. */
export const HBA_LOCK_DATABASES = ['template1', 'postgres'] as const;

/** How long either lock is waited for: an edit holds them for tens of milliseconds. */
export const HBA_LOCK_WAIT_MS = 10_000;

// SET LOCAL in the same simple query: whatever lock_timeout the database or PGOPTIONS set is not the bound
const SERVER_LOCK_SQL = `SET LOCAL lock_timeout = '${HBA_LOCK_WAIT_MS}ms'; SELECT pg_advisory_lock(${HBA_LOCK_KEY})`;
const SERVER_UNLOCK_SQL = `SELECT pg_advisory_unlock(${HBA_LOCK_KEY})`;
const SERVER_HOLDER_SQL = `SELECT l.pid, a.application_name::text AS app, host(a.client_addr) AS addr
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid::bigint = $1 AND l.objid::bigint = $2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

/** The local lock for one pg_hba.conf (its real path): held until released, or until this process dies. */
export async function lockHbaFile(target: string, env: NodeJS.ProcessEnv = process.env): Promise<HeldLock> {
  const dir = await openStateDir(env, 'locks');
  const name = `hba-${createHash('sha256').update(target).digest('hex').slice(0, 16)}.lock`;
  return acquireFileLock(path.join(dir, name), HBA_LOCK_WAIT_MS, `the pg_hba.conf lock for ${target} on this host`);
}

/** The server lock, held on its own session until released. */
export interface ServerLock {
  release(): Promise<void>;
}

/** Takes the server lock for a node (tests of apply() without a server pass a stand-in). */
export type ServerLocker = (params: ConnParams) => Promise<ServerLock>;

/** A session in the first of HBA_LOCK_DATABASES that lets this login in; else why none did. */
async function lockSession(params: ConnParams): Promise<Client> {
  const refused: string[] = [];
  for (const db of HBA_LOCK_DATABASES)
    try {
      return await connect(params, db);
    } catch (err) {
      refused.push(`${db}: ${describeError(err)}`);
    }
  throw new Error(
    `could not take this server's pg_hba.conf lock: it is held in database ${HBA_LOCK_DATABASES.join(' (or ')}) so that operators connected to any database share it, and neither let this login in (${refused.join('; ')}); the file was not changed`,
  );
}

async function holderOf(client: Client): Promise<string> {
  const key = BigInt.asUintN(64, BigInt(HBA_LOCK_KEY));
  const holder = (
    await client.query<{ pid: number; app: string | null; addr: string | null }>(SERVER_HOLDER_SQL, [
      String(key >> 32n),
      String(key & 0xffffffffn),
    ])
  ).rows[0];
  return holder
    ? `backend pid ${holder.pid}${holder.app ? ` (${holder.app})` : ''}${holder.addr ? ` from ${holder.addr}` : ''}`
    : 'another session';
}

/** The server lock on a session of its own in template1 (or postgres), waited for up to HBA_LOCK_WAIT_MS. */
export const lockServer: ServerLocker = async (params) => {
  const client = await lockSession(params);
  try {
    await client.query(SERVER_LOCK_SQL);
  } catch (err) {
    const who = (err as { code?: string }).code === '55P03' ? await holderOf(client).catch(() => 'another session') : null;
    await client.end().catch(() => undefined);
    if (who === null) throw err;
    throw new Error(
      `${who} has held this server's pg_hba.conf lock for more than ${HBA_LOCK_WAIT_MS / 1000} s (another operator editing it); the file was not changed`,
      { cause: err },
    );
  }
  // unlocked at once for the next waiter; a broken session has released it already
  const release = async () => {
    await client.query(SERVER_UNLOCK_SQL).catch(() => undefined);
    await client.end().catch(() => undefined);
  };
  return { release };
};

/**
 * Run `fn(target)` under both locks; `target` is the real path of `file` (a link followed), to be
 * read afresh and written by `fn`. `lock.params` are the node's: the server lock opens its own session.
 */
export async function withHbaLock<T>(
  lock: { params: ConnParams; serverLock?: ServerLocker; env?: NodeJS.ProcessEnv },
  file: string,
  fn: (target: string) => Promise<T>,
): Promise<T> {
  const target = await fs.realpath(file);
  const local = await lockHbaFile(target, lock.env);
  try {
    const server = await (lock.serverLock ?? lockServer)(lock.params);
    try {
      return await fn(target);
    } finally {
      await server.release();
    }
  } finally {
    await local.release();
  }
}
