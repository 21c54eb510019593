// The one way pgrevoke writes files: reports, markdown, the audit log, JUnit, pg_hba.conf and its
// backups, the state directory. It runs as root or postgres, so every path it writes is attack
// surface: a link planted at the final path or at a guessable temp name would make it write (and
// chmod) a file elsewhere. So: never follow a link at the final path or a temp path (O_NOFOLLOW,
// O_EXCL on an unpredictable temp name in the same directory, then rename), mode 0600 for what it
// creates, fsync before it says "written", and no temp file left behind on any failure. Before
// any change, outputs are checked (writeProblem): every directory on the way must be one only root
// or this user can change (else its owner could swap in a link to a victim directory), and a file
// to be appended to must have no other name (a hard link to /etc/something). Not in writeFileSafe
// itself: pg_hba.conf lives in a data directory its server's OS user owns.
import { randomBytes } from 'node:crypto';
import { constants as C, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ExitCode, PgrevokeError } from '../errors.js';

export const PRIVATE_MODE = 0o600;

export interface WriteOptions {
  /** Mode of the file written (default 0600). */
  mode?: number;
  /** Owner to give it (a pg_hba.conf keeps its owner); default: whoever runs pgrevoke. */
  owner?: { uid: number; gid: number };
  /** fsync the file and its directory before returning (default true). */
  durable?: boolean;
}

function unsafe(file: string, why: string): PgrevokeError {
  return new PgrevokeError(`refusing to write ${file}: ${why}`, {
    exitCode: ExitCode.USAGE,
    hint: 'pgrevoke never writes through a symbolic link or onto something that is not a regular file; name the real path',
  });
}

async function lstatOrNull(file: string) {
  try {
    return await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Why a file owned by `uid` may not be appended to by this process, or null (root could be led to write another user's log). */
function ownerProblem(uid: number): string | null {
  const me = process.getuid?.();
  return me !== undefined && uid !== me ? `it belongs to uid ${uid}, not to this user` : null;
}

/** Why a directory on the way lets someone other than root and this user change what is below it, or null. */
function directoryProblem(dir: string, st: Stats, me: number): string | null {
  const then = 'they could put another directory in its place';
  if (st.uid !== 0 && st.uid !== me) return `the directory ${dir} is owned by uid ${st.uid}, neither root nor this user: ${then}`;
  // sticky (/tmp): others may add names there, but not rename or remove this user's or root's
  if (st.mode & 0o022 && !(st.mode & 0o1000))
    return `the directory ${dir} is writable by its group or by everyone without the sticky bit (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): ${then}`;
  return null;
}

/** Every directory from / down to `dir`. */
function fromRoot(dir: string): string[] {
  const up = path.dirname(dir);
  return up === dir ? [dir] : [...fromRoot(up), dir];
}

/** The real path of `dir`, or of its deepest existing ancestor (what is not there yet, pgrevoke creates). */
async function realExisting(dir: string): Promise<string> {
  try {
    return await fs.realpath(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(dir) === dir) throw err;
    return realExisting(path.dirname(dir));
  }
}

/**
 * Why a directory above `target` (walked from / down, as given and as its real path) is one another
 * user could change, or null. Components not there yet are skipped: pgrevoke creates them, 0700.
 */
export async function ancestorProblem(target: string): Promise<string | null> {
  const me = process.getuid?.() ?? -1;
  const dir = path.dirname(path.resolve(target));
  for (const d of [...fromRoot(dir), ...fromRoot(await realExisting(dir))]) {
    const st = await fs.stat(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
      throw err;
    });
    const problem = st && directoryProblem(d, st, me);
    if (problem) return problem;
  }
  return null;
}

/** Why a file to be appended to may not be: another user's (root could be led to write their log), or a second name of another file. */
function appendProblem(st: Stats): string | null {
  // a hard link's other name may be /etc/something: appending (and tightening its mode) would write there.
  // writeFileSafe needs no such check: its rename replaces the name, never the file behind it
  if (st.nlink > 1) return `it has ${st.nlink} hard links (another name of the same file may be anywhere)`;
  return ownerProblem(st.uid);
}

/**
 * Why `file` cannot be written safely, or null: checked before any change, so a bad path changes
 * nothing. `append`: it will be appended to (the audit log), so another user's file is refused too.
 */
export async function writeProblem(file: string, opts: { append?: boolean } = {}): Promise<string | null> {
  const abs = path.resolve(file);
  const st = await lstatOrNull(abs).catch((err: Error) => err);
  if (st instanceof Error) return st.message;
  if (st?.isSymbolicLink()) return 'it is a symbolic link';
  if (st && !st.isFile()) return st.isDirectory() ? 'it is a directory' : 'it is not a regular file';
  const owner = st && opts.append ? appendProblem(st) : null;
  if (owner) return owner;
  const ancestor = await ancestorProblem(abs).catch((err: Error) => err.message);
  if (ancestor) return ancestor;
  const dir = path.dirname(abs);
  try {
    const d = await fs.stat(dir);
    if (!d.isDirectory()) return `${dir} is not a directory`;
    await fs.access(dir, C.W_OK | C.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `the directory ${dir} does not exist`
      : `the directory ${dir} is not writable${code === 'EROFS' ? ' (read-only file system)' : ''}`;
  }
  if (st)
    try {
      await fs.access(abs, C.W_OK);
    } catch {
      return 'it is not writable';
    }
  return null;
}

/** An output a command was asked to write: the flag that named it, for the error line. */
export interface NamedOutput {
  flag: string;
  file: string | null | undefined;
  append?: boolean;
}

/** Every named output must be writable before the first change: else exit 2 naming flag, path and reason. */
export async function checkOutputs(outputs: readonly NamedOutput[]): Promise<void> {
  for (const o of outputs) {
    if (!o.file) continue;
    const problem = await writeProblem(o.file, { append: o.append });
    if (problem) throw new PgrevokeError(`cannot write ${o.flag} ${o.file}: ${problem}; nothing was changed`, { exitCode: ExitCode.USAGE });
  }
}

/** fsync a directory, so that a file just created or renamed in it survives a crash (the cutoff record uses it too). */
export async function syncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Replace `file` with `data` atomically (temp file, fsync, rename); a link at `file` is refused, never followed. */
export async function writeFileSafe(file: string, data: string | Buffer, opts: WriteOptions = {}): Promise<void> {
  const abs = path.resolve(file);
  const st = await lstatOrNull(abs);
  if (st?.isSymbolicLink()) throw unsafe(abs, 'it is a symbolic link');
  if (st && !st.isFile()) throw unsafe(abs, 'it is not a regular file');
  const dir = path.dirname(abs);
  const tmp = path.join(dir, `.${path.basename(abs)}.${randomBytes(12).toString('base64url')}.tmp`);
  const durable = opts.durable ?? true;
  let handle: fs.FileHandle | null = null;
  try {
    handle = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, opts.mode ?? PRIVATE_MODE);
    // the umask may have narrowed the mode asked for; a pg_hba.conf must keep its own
    await handle.chmod(opts.mode ?? PRIVATE_MODE);
    if (opts.owner) await handle.chown(opts.owner.uid, opts.owner.gid);
    await handle.writeFile(data);
    if (durable) await handle.sync();
    await handle.close();
    handle = null;
    // rename replaces whatever is at abs now (a link planted since is replaced, not followed)
    await fs.rename(tmp, abs);
    if (durable) await syncDir(dir);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Append to `file` (created 0600), never through a link; a file of another user is refused, and one
 * readable by others is tightened to 0600 first (it holds query texts): the result says so.
 */
export async function appendSafe(file: string, text: string, opts: { durable?: boolean } = {}): Promise<{ tightenedFrom: number | null }> {
  const abs = path.resolve(file);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(abs, C.O_WRONLY | C.O_APPEND | C.O_CREAT | C.O_NOFOLLOW, PRIVATE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw unsafe(abs, 'it is a symbolic link');
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw unsafe(abs, 'it is not a regular file');
    const owner = appendProblem(st);
    if (owner) throw unsafe(abs, owner);
    const loose = st.mode & 0o077 ? st.mode & 0o777 : null;
    if (loose !== null) await handle.chmod(PRIVATE_MODE);
    await handle.appendFile(text, 'utf8');
    if (opts.durable ?? true) await handle.sync();
    return { tightenedFrom: loose };
  } finally {
    await handle.close();
  }
}
