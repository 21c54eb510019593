// Ending a backend from the operating system, where pg_terminate_backend() cannot: that function
// looks the backend's role up in pg_authid, so a superuser holding ACCESS EXCLUSIVE on pg_authid
// (after changing its own row, which empties every session's role cache) makes it wait like every
// other query. SIGTERM is exactly what pg_terminate_backend() sends. Only for a server on this host,
// and only to a process proven to be one of its backends: a child of the postmaster named in the
// data directory's postmaster.pid (which also names the server's port), running in that directory.
import { readFile, realpath } from 'node:fs/promises';

/** Where the server keeps its data (superuser or pg_read_all_settings): each backend runs there. */
export const DATA_DIRECTORY_SQL = `SELECT current_setting('data_directory') AS data_directory, current_setting('port')::int AS port`;

/** The server as it describes itself: where its data is, and its port. */
export interface ServerHome {
  data_directory: string;
  port: number;
}

async function parentOf(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^PPid:\s*(\d+)$/m.exec(status);
  return m ? Number(m[1]) : null;
}

/** Whether `pid` is a backend of that server, on this host (false when the server is elsewhere). */
export async function isBackendOf(pid: number, home: ServerHome): Promise<boolean> {
  try {
    const [dir, cwd, lock, parent] = await Promise.all([
      realpath(home.data_directory),
      realpath(`/proc/${pid}/cwd`),
      // postmaster.pid: pid, data directory, start time, port, ...
      readFile(`${home.data_directory}/postmaster.pid`, 'utf8').then((t) => t.split('\n')),
      parentOf(pid),
    ]);
    return cwd === dir && Number(lock[3]) === home.port && parent !== null && parent === Number(lock[0]);
  } catch {
    return false;
  }
}

/** SIGTERM to each pid proven to be a backend of that server; returns those signalled. */
export async function signalBackends(pids: readonly number[], home: ServerHome): Promise<number[]> {
  const sent: number[] = [];
  for (const pid of pids) {
    if (!(await isBackendOf(pid, home))) continue;
    try {
      process.kill(pid, 'SIGTERM');
      sent.push(pid);
    } catch {
      // EPERM: not root and not the server's OS user
    }
  }
  return sent;
}
