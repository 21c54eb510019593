// A lock between processes on this host, as a file in the state directory. Node has no flock(2),
// and a lock helper process or a native module would be one more thing to trust as root; so: the
// lock is a file holding the holder's pid and start time, put in place with link(2) from a complete
// temp file (an O_EXCL create that is never seen half-written). A SIGKILLed holder leaves it
// behind: a lock whose pid is gone, or is now another process (its start time in /proc differs),
// is stale and is broken by renaming it aside and removing it only if it is the very file found
// stale (same inode); had another breaker replaced it meanwhile, it is put back. What remains: a
// third process creating a lock in the instant a wrongly moved one is put back. Callers that edit
// a server's files also hold a server-side lock (src/playbook/hba-lock.ts), which covers that too.
import { randomBytes } from 'node:crypto';
import { constants as C, promises as fs } from 'node:fs';

export interface HeldLock {
  release(): Promise<void>;
}

/** The lock was held by a live process for longer than the wait allowed. */
export class LockBusy extends Error {}

interface Holder {
  ino: number;
  pid: number;
  start: string;
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat), or '-' without /proc. */
async function startTime(pid: number): Promise<string> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '-';
  } catch {
    return '-';
  }
}

async function alive(h: Holder): Promise<boolean> {
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false; // EPERM: alive, another user's
  }
  const now = h.start === '-' ? '-' : await startTime(h.pid);
  return now === '-' || now === h.start;
}

/** Create the lock file with our identity in it; its inode, or null when it exists already. */
async function tryCreate(file: string, identity: string): Promise<number | null> {
  const tmp = `${file}.${randomBytes(9).toString('base64url')}.tmp`;
  const h = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    await h.writeFile(identity);
    const { ino } = await h.stat();
    await fs.link(tmp, file);
    return ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  } finally {
    await h.close();
    await fs.unlink(tmp).catch(() => undefined);
  }
}

/** Who holds the lock; null when it vanished. Unreadable content counts as a dead holder (pid 0). */
async function readHolder(file: string): Promise<Holder | null> {
  let h: fs.FileHandle;
  try {
    h = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const { ino } = await h.stat();
    const [pid, start] = (await h.readFile('utf8')).trim().split(' ');
    return { ino, pid: /^[1-9]\d*$/.test(pid ?? '') ? Number(pid) : 0, start: start ?? '-' };
  } finally {
    await h.close();
  }
}

async function breakStale(file: string, ino: number): Promise<void> {
  const aside = `${file}.${randomBytes(9).toString('base64url')}.stale`;
  try {
    await fs.rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // another process broke it first
    throw err;
  }
  // a live lock taken since the stale one was read goes back where it was
  if ((await fs.lstat(aside)).ino !== ino) await fs.link(aside, file).catch(() => undefined);
  await fs.unlink(aside);
}

async function release(file: string, ino: number): Promise<void> {
  const st = await fs.lstat(file).catch(() => null);
  if (st?.ino === ino) await fs.unlink(file);
}

/** Take the lock at `file`, waiting up to `waitMs` for a live holder; `what` names it in the error. */
export async function acquireFileLock(file: string, waitMs: number, what: string): Promise<HeldLock> {
  const identity = `${process.pid} ${await startTime(process.pid)}\n`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const ino = await tryCreate(file, identity);
    if (ino !== null) return { release: () => release(file, ino) };
    const holder = await readHolder(file);
    if (!holder) continue;
    if (holder.pid === 0 || !(await alive(holder))) await breakStale(file, holder.ino);
    else if (Date.now() > deadline)
      throw new LockBusy(`${what} has been held by pid ${holder.pid} for more than ${waitMs / 1000} s (lock file ${file})`);
    else await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
  }
}
