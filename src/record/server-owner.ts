// Whether pgrevoke runs as the OS user the PostgreSQL server runs as. Then any database superuser,
// or member of pg_write_server_files, can write files as this user (COPY ... TO), the state
// directory included: a record there may have been planted. Cheap on purpose (a setting and a
// stat): restore and history ask, never cutoff's path.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Queryable } from '../checks/types.js';

/** Where the server keeps its data: superusers and pg_read_all_settings get a row, others none. */
export const DATA_DIRECTORY_SETTING_SQL = `SELECT setting FROM pg_settings WHERE name = 'data_directory'`;

async function ownerOf(file: string): Promise<number | null> {
  try {
    return (await fs.stat(file)).uid;
  } catch {
    return null;
  }
}

/**
 * This process's uid when it owns the server's data directory (when the connection may read where
 * that is), or else its socket file (a connection over a local socket); null otherwise.
 */
export async function sharedServerUid(
  where: { host: string; port: number },
  q: Queryable | null,
  uid: number | undefined = process.getuid?.(),
): Promise<number | null> {
  // PostgreSQL refuses to run as root
  if (uid === undefined || uid === 0) return null;
  const rows = q ? (await q.query<{ setting: string }>(DATA_DIRECTORY_SETTING_SQL).catch(() => ({ rows: [] }))).rows : [];
  const dir = rows[0]?.setting;
  const socket = where.host.startsWith('/') ? path.join(where.host, `.s.PGSQL.${where.port}`) : null;
  const owner = dir ? await ownerOf(dir) : socket ? await ownerOf(socket) : null;
  return owner === uid ? uid : null;
}

/** The one line restore and history print then. */
export function serverOwnerWarning(uid: number, stateDir: string): string {
  return `pgrevoke: warning: this runs as the OS user the PostgreSQL server runs as (uid ${uid}): any database superuser or member of pg_write_server_files can write files as this user, ${stateDir} included, so a record there may have been planted; check what restore lists before confirming, and run pgrevoke as root or a dedicated OS user (or set PGREVOKE_STATE_DIR out of this user's reach)`;
}
