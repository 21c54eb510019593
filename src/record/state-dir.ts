// The one place pgrevoke keeps state: cutoff records, HBA backups and locks, later lockouts and the
// identity receiver's users and journal. $PGREVOKE_STATE_DIR, default
// ${XDG_STATE_HOME:-~/.local/state}/pgrevoke. pgrevoke runs as root or postgres: a state directory
// another user owns or can write could be used to feed it records or catch what it writes, and so
// could one below a directory another user can change (they could swap the whole path).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExitCode, PgrevokeError } from '../errors.js';
import { ancestorProblem } from './safe-write.js';

/** Where the state directory is (not created). */
export function stateDirPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PGREVOKE_STATE_DIR) return path.resolve(env.PGREVOKE_STATE_DIR);
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'pgrevoke');
}

function refuse(dir: string, why: string, hint: string): PgrevokeError {
  return new PgrevokeError(`state directory ${dir} ${why}; nothing was changed`, { exitCode: ExitCode.USAGE, hint });
}

/** Why an existing directory may not hold pgrevoke's state, or null. */
export function stateDirProblem(
  st: { isDirectory(): boolean; isSymbolicLink(): boolean; uid: number; mode: number },
  uid: number,
): string | null {
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid) return `is owned by uid ${st.uid}, not by this user (uid ${uid})`;
  if (st.mode & 0o022) return `is writable by its group or by everyone (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`;
  return null;
}

/**
 * The state directory, created mode 0700 (parents too, as `mkdir -p` would, 0700) and checked: a
 * link, another user's directory or a group/world-writable one is refused (exit 2).
 */
export async function openStateDir(env: NodeJS.ProcessEnv = process.env, sub?: string): Promise<string> {
  const dir = stateDirPath(env);
  // before mkdir: nothing is created below a directory another user could change
  const above = await ancestorProblem(dir);
  if (above)
    throw refuse(
      dir,
      `is not safe: ${above}`,
      'use a directory of your own below directories only root and you can change, or set PGREVOKE_STATE_DIR',
    );
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.() ?? -1;
  const problem = stateDirProblem(await fs.lstat(dir), uid);
  if (problem) throw refuse(dir, problem, `use a directory of your own with mode 0700 (chmod 700 ${dir}), or set PGREVOKE_STATE_DIR`);
  if (!sub) return dir;
  const inner = path.join(dir, sub);
  await fs.mkdir(inner, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const innerProblem = stateDirProblem(await fs.lstat(inner), uid);
  if (innerProblem) throw refuse(inner, innerProblem, `remove it; pgrevoke creates it mode 0700`);
  return inner;
}
