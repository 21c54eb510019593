// Authentication failures from a log file on the database host (`--server-log FILE`): for a
// server whose log is not readable over SQL, or with logging_collector off, as Debian runs it
// (stderr to /var/log/postgresql/postgresql-<major>-<cluster>.log). Read incrementally through an
// open handle, so that a rotation is noticed (the name now leads to another inode: the old file is
// read to its end first) as is a truncation (logrotate's copytruncate, Debian's choice: the file
// shrank, or its first bytes changed; what was written before the copy is read from the copy).
// Like every file pgrevoke touches, it is never opened through a symbolic link at its final path
// (record/safe-write.ts): someone who can write the log's directory could otherwise point pgrevoke
// at another file. Nor through anything but a regular file (a FIFO would block, a device never end).
import { constants as C, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ExitCode, PgrevokeError } from '../errors.js';
import { firstBoundary, lastBoundary, TAIL_BYTES } from './boundary.js';
import { HEAD_BYTES, identityText, parseIdentity, sameHead, type Identity } from './fingerprint.js';
import { formatOfName, sniffFormat } from './format.js';
import type { ExtractStats } from './extract.js';
import { DEBIAN_PREFIX, type ParseStats } from './parser.js';
import type { LogFormat } from './record.js';
import { DEFAULT_POLL_BYTES, LogTail, type TailOptions } from './tail.js';
import type { AuthFailure, AuthFailureSource, LogCursor } from './types.js';

export interface FileSourceOptions extends TailOptions {
  file: string;
  /** Default: from the name (.csv, .json), else from the first line. */
  format?: LogFormat;
  /** Where a previous run stopped; none: start at the end of the file. */
  cursor?: LogCursor | null;
}

export interface FileSourceStats {
  rotations: number;
  truncations: number;
  /** Rotated or truncated files whose unread rest could not be found. */
  lost: number;
}

interface Open {
  handle: fs.FileHandle;
  inode: string;
}

function refuse(file: string, why: string): PgrevokeError {
  return new PgrevokeError(`refusing to read ${file}: ${why}`, {
    exitCode: ExitCode.USAGE,
    hint: 'pgrevoke never reads a log through a symbolic link or from anything but a regular file; name the real path',
  });
}

const inodeOf = (st: Stats): string => `${st.dev}:${st.ino}`;

async function lstatOrNull(file: string): Promise<Stats | null> {
  try {
    return await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Open `file` for reading: no link followed at the final path, no blocking on a FIFO, regular files only. */
export async function openLogFile(file: string): Promise<Open> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw refuse(file, 'it is a symbolic link');
    throw err;
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    throw refuse(file, 'it is not a regular file');
  }
  return { handle, inode: inodeOf(st) };
}

async function readAt(handle: fs.FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buf, 0, length, offset);
  return buf.subarray(0, bytesRead);
}

export class FileLogSource implements AuthFailureSource {
  private tail: LogTail | null = null;
  private open: Open | null = null;
  private position: LogCursor | null;
  private lastSize: number | null = null;
  readonly stats: FileSourceStats = { rotations: 0, truncations: 0, lost: 0 };

  constructor(private readonly opts: FileSourceOptions) {
    this.position = opts.cursor ?? null;
  }

  get format(): LogFormat | null {
    return this.tail?.format ?? null;
  }

  describe(): string {
    return this.opts.file;
  }

  /** What the reader threw away: over-long and unreadable entries, suspected forgeries, failures with no address. */
  tailStats(): ParseStats & ExtractStats {
    return {
      ...(this.tail?.parser.stats ?? { oversized: 0, unreadable: 0 }),
      ...(this.tail?.extractor.stats ?? { suspect: 0, unaddressed: 0 }),
    };
  }

  cursor(): LogCursor | null {
    return this.position ? { ...this.position } : null;
  }

  async close(): Promise<void> {
    await this.open?.handle.close();
    this.open = null;
  }

  private async setup(o: Open): Promise<LogTail> {
    if (this.tail) return this.tail;
    let format = this.opts.format ?? formatOfName(this.opts.file);
    if (!this.opts.format && format === 'stderr') {
      const head = await readAt(o.handle, 0, 4096);
      const nl = head.indexOf(0x0a);
      if (nl >= 0) format = sniffFormat(head.subarray(0, nl).toString('utf8'));
    }
    const zone = this.opts.zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    this.tail = new LogTail(format, { ...this.opts, prefix: this.opts.prefix ?? DEBIAN_PREFIX, zone });
    return this.tail;
  }

  async poll(): Promise<AuthFailure[]> {
    const st = await lstatOrNull(this.opts.file);
    if (st?.isSymbolicLink()) throw refuse(this.opts.file, 'it is a symbolic link');
    const failures: AuthFailure[] = [];
    let budget = this.tail?.pollBytes ?? DEFAULT_POLL_BYTES;
    if (this.open && (!st || inodeOf(st) !== this.open.inode)) {
      // rotated: the old file is complete, read it to its end
      const old = this.open;
      this.open = null;
      if (this.position) {
        const done = await this.drain(old, (await old.handle.stat()).size, true, budget);
        failures.push(...done.failures);
        budget -= done.bytes;
      }
      await old.handle.close();
      this.stats.rotations++;
      this.tail?.parser.reset();
      this.position = null;
      this.lastSize = null;
      if (!st) return failures;
      this.open = await openLogFile(this.opts.file);
      this.position = { file: this.opts.file, offset: 0, identity: null };
    }
    if (!this.open) {
      if (!st) return failures;
      this.open = await openLogFile(this.opts.file);
      const tail = await this.setup(this.open);
      if (!this.position) {
        await this.start(tail, this.open);
        return failures;
      }
      failures.push(...(await this.resume(this.open, budget)));
    }
    const tail = await this.setup(this.open);
    failures.push(...(await this.current(tail, this.open, budget)));
    return failures;
  }

  /** No cursor: start at the end (at an entry boundary), learning the connections logged just before. */
  private async start(tail: LogTail, o: Open): Promise<void> {
    const size = (await o.handle.stat()).size;
    const base = Math.max(0, size - TAIL_BYTES);
    const data = await readAt(o.handle, base, size - base);
    const offset = lastBoundary(tail.format, data, base);
    tail.extractor.prime(tail.parser.peek(data.subarray(0, offset - base), base));
    this.position = { file: this.opts.file, offset, identity: await this.identity(o) };
    this.lastSize = size;
  }

  private async identity(o: Open): Promise<string> {
    return identityText(await readAt(o.handle, 0, HEAD_BYTES), o.inode);
  }

  /**
   * A cursor from an earlier run: if the file under the name is another one now (rotated while
   * pgrevoke was not running), read the rest of the cursor's file first, if it is still beside it.
   */
  private async resume(o: Open, budget: number): Promise<AuthFailure[]> {
    const id = parseIdentity(this.position!.identity);
    const head = await readAt(o.handle, 0, HEAD_BYTES);
    if (!id || (id.inode === o.inode && sameHead(id, head.subarray(0, id.headLength)))) {
      await this.primeBefore(o);
      return [];
    }
    const failures = id ? await this.finishCopy(id, budget) : [];
    this.stats.rotations++;
    this.tail!.parser.reset();
    this.position = { file: this.opts.file, offset: 0, identity: identityText(head, o.inode) };
    return failures;
  }

  /**
   * Resumed in the same file: learn the connections logged just before the cursor, as start() does
   * before the end (stderr without %h: a failure's address is its backend's `connection received`
   * line, which a login in flight across the restart logged before the cursor).
   */
  private async primeBefore(o: Open): Promise<void> {
    const tail = this.tail!;
    const offset = this.position!.offset;
    if (offset === 0 || offset > (await o.handle.stat()).size) return;
    const base = Math.max(0, offset - TAIL_BYTES);
    const data = await readAt(o.handle, base, offset - base);
    const start = base === 0 ? 0 : firstBoundary(tail.format, data, base);
    tail.extractor.prime(tail.parser.peek(data.subarray(start - base), start));
  }

  /** The rest of a file that is no longer under the name (rotated, or copied before a truncation), found beside it by inode or first bytes. */
  private async finishCopy(id: Identity, budget: number): Promise<AuthFailure[]> {
    const dir = path.dirname(this.opts.file);
    const base = path.basename(this.opts.file);
    const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n !== base && n.startsWith(base) && !n.endsWith('.gz'));
    for (const name of names.sort()) {
      const candidate = await openLogFile(path.join(dir, name)).catch(() => null);
      if (!candidate) continue;
      try {
        const head = await readAt(candidate.handle, 0, id.headLength);
        if (candidate.inode === id.inode || sameHead(id, head)) {
          const done = await this.drain(candidate, (await candidate.handle.stat()).size, true, budget);
          return done.failures;
        }
      } finally {
        await candidate.handle.close();
      }
    }
    this.stats.lost++;
    return [];
  }

  /** The file under the name: truncated (it shrank, or its first bytes changed) means from 0, after the copy's rest. */
  private async current(tail: LogTail, o: Open, budget: number): Promise<AuthFailure[]> {
    const pos = this.position!;
    const size = (await o.handle.stat()).size;
    const id = parseIdentity(pos.identity);
    const head = await readAt(o.handle, 0, HEAD_BYTES);
    const failures: AuthFailure[] = [];
    if (size < pos.offset || (id && !sameHead(id, head.subarray(0, id.headLength)))) {
      this.stats.truncations++;
      if (id) failures.push(...(await this.finishCopy(id, budget)));
      tail.parser.reset();
      pos.offset = 0;
      this.lastSize = null;
    }
    pos.identity = identityText(head, o.inode);
    const settled = this.lastSize === size;
    this.lastSize = size;
    const done = await this.drain(o, size, settled, budget);
    failures.push(...done.failures);
    return failures;
  }

  private async drain(o: Open, size: number, settled: boolean, budget: number) {
    const tail = this.tail!;
    const pos = this.position!;
    const done = await tail.drain((offset, length) => readAt(o.handle, offset, length), pos.offset, size, settled, budget);
    pos.offset = done.offset;
    return done;
  }
}
