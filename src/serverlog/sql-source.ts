// Authentication failures read over SQL, with no shell on the database host: the file the
// logging collector writes now (pg_current_logfile), the log directory's listing for what was
// rotated away (pg_ls_logdir), and bounded chunks of bytes (pg_read_binary_file). A superuser can
// call all three; another role needs EXECUTE on each (sql.ts grantsSql, docs/server-log.md).
// Across a rotation the old file is read to its end first, then every file after it, each from
// offset 0: no line is read twice or skipped.
import path from 'node:path';
import type { Queryable } from '../checks/types.js';
import { PgrevokeError } from '../errors.js';
import { firstBoundary, lastBoundary, TAIL_BYTES } from './boundary.js';
import type { ExtractStats } from './extract.js';
import type { ParseStats } from './parser.js';
import { HEAD_BYTES, identityText, parseIdentity, sameHead } from './fingerprint.js';
import { formatOfName, formatsOf, stderrGaps } from './format.js';
import type { LogFormat } from './record.js';
import { POLL_SQL, READ_SQL, SETTINGS_SQL, type PollRow, type ReadRow, type SettingsRow } from './sql.js';
import { LogTail, type Drained, type TailOptions } from './tail.js';
import { logTimeToIso } from './time.js';
import type { AuthFailure, AuthFailureSource, LogCursor } from './types.js';

export interface SqlSourceOptions extends Omit<TailOptions, 'prefix' | 'zone'> {
  /** Which of log_destination's files to read; default the best one it has (csvlog, jsonlog, stderr). */
  format?: LogFormat;
  /** Where a previous run stopped (persisted); none: start at the end of the current file. */
  cursor?: LogCursor | null;
  /** For messages: the node's name. */
  label?: string;
  /**
   * No cursor: instead of at the end, start this many bytes before it (in the file before the
   * current one, when the current one is shorter), at an entry boundary, and read from there on
   * the first poll: a bounded look back (inspect, cutoff's verification).
   */
  back?: number;
}

/** Where a look back (`back`) began: the file, the offset, and the log time of the first entry there. */
export interface BackStart {
  file: string;
  offset: number;
  /** ISO 8601; null when the first entry's time cannot be read (or nothing was there). */
  at: string | null;
}

export interface SqlSourceStats {
  rotations: number;
  /** Files that were gone before they were read to the end (removed, or the cursor's file missing). */
  lost: number;
}

interface Listing {
  current: string;
  files: PollRow['files'];
  /** The cursor's file's first bytes and the chunk from the cursor on, read in the same round trip. */
  pre: { file: string; offset: number; row: ReadRow } | null;
}

export class SqlLogSource implements AuthFailureSource {
  private tail: LogTail | null = null;
  private settings: SettingsRow | null = null;
  private position: LogCursor | null;
  /** The size the file had at the last poll: unchanged means settled (parser.ts). */
  private lastSize = new Map<string, number>();
  /** Problems with the server's settings for this reader (no %h and no log_connections, ...). */
  warnings: string[] = [];
  readonly stats: SqlSourceStats = { rotations: 0, lost: 0 };
  /** Started from a saved cursor, not yet polled. */
  private resumed: boolean;
  /** Set by the first poll of a look back (`back`). */
  backStart: BackStart | null = null;

  constructor(
    private readonly client: Queryable,
    private readonly opts: SqlSourceOptions = {},
  ) {
    this.position = opts.cursor ?? null;
    this.resumed = this.position !== null;
  }

  get format(): LogFormat | null {
    return this.tail?.format ?? null;
  }

  describe(): string {
    return `pg_read_binary_file on ${this.opts.label ?? 'the server'}${this.position ? ` (${this.position.file})` : ''}`;
  }

  /** What the reader threw away: over-long and unreadable entries, suspected forgeries, failures with no address. */
  tailStats(): ParseStats & ExtractStats {
    return {
      ...(this.tail?.parser.stats ?? { oversized: 0, unreadable: 0 }),
      ...(this.tail?.extractor.stats ?? { suspect: 0, unaddressed: 0 }),
    };
  }

  /** The server's logging settings, once the first poll has read them. */
  get serverSettings(): SettingsRow | null {
    return this.settings;
  }

  cursor(): LogCursor | null {
    return this.position ? { ...this.position } : null;
  }

  private async setup(): Promise<LogTail> {
    if (this.tail) return this.tail;
    const s = (await this.client.query<SettingsRow>(SETTINGS_SQL)).rows[0]!;
    this.settings = s;
    const formats = formatsOf(s.destination);
    const format = this.opts.format ?? (this.position ? formatOfName(this.position.file) : formats[0]);
    if (!format || !formats.includes(format))
      throw new PgrevokeError(`the server logs to ${s.destination}, which has no ${this.opts.format ?? 'file format this reader reads'}`, {
        hint: "set log_destination to include 'csvlog' (or 'jsonlog' on 15+), with logging_collector = on",
      });
    if (format === 'stderr') this.warnings.push(...stderrGaps(s.prefix, s.connections));
    if (!/^(C|POSIX|en([_.@].*)?)$/i.test(s.messages.trim()) && s.messages.trim() !== '')
      this.warnings.push(
        `lc_messages is ${s.messages}: only English messages are recognized (csvlog and jsonlog still count 28P01/28000 failures as 'other')`,
      );
    const logHostname = s.hostname === 'on';
    if (logHostname)
      this.warnings.push(
        'log_hostname is on: the log names clients by reverse DNS, which a client controls, so no failure has an address (no address lockouts or bans); set log_hostname = off',
      );
    this.tail = new LogTail(format, { ...this.opts, prefix: s.prefix, zone: s.zone, logHostname });
    return this.tail;
  }

  private async listing(tail: LogTail): Promise<Listing> {
    const pos = this.position;
    const from = pos ? tail.parser.resumeAt(pos.offset) : 0;
    const params = [tail.format, pos?.file ?? null, from, pos ? Math.min(tail.chunkBytes, tail.pollBytes) : 0];
    const row = (await this.client.query<PollRow>(POLL_SQL, params)).rows[0]!;
    if (!row.current)
      throw new PgrevokeError(`the server names no current ${tail.format} log file (pg_current_logfile('${tail.format}') is NULL)`, {
        hint: 'the log is readable over SQL only with logging_collector = on; otherwise use --server-log FILE on the database host',
      });
    return {
      current: row.current,
      files: row.files.map((f) => ({ ...f, size: Number(f.size) })),
      pre: pos ? { file: pos.file, offset: from, row: { head: row.head, data: row.data } } : null,
    };
  }

  private async read(file: string, offset: number, length: number, head = 0): Promise<ReadRow> {
    return (await this.client.query<ReadRow>(READ_SQL, [file, offset, length, head])).rows[0]!;
  }

  private sizeOf(listing: Listing, file: string): number | null {
    return listing.files.find((f) => f.name === path.posix.basename(file))?.size ?? null;
  }

  /** No cursor: start at the end of the current file (at an entry boundary). */
  private async start(tail: LogTail, listing: Listing): Promise<void> {
    const size = this.sizeOf(listing, listing.current) ?? 0;
    const base = Math.max(0, size - TAIL_BYTES);
    const row = await this.read(listing.current, base, size - base, HEAD_BYTES);
    const data = row.data ?? Buffer.alloc(0);
    const offset = lastBoundary(tail.format, data, base);
    // the backends logging in right now logged their `connection received` before this offset
    tail.extractor.prime(tail.parser.peek(data.subarray(0, offset - base), base));
    this.position = { file: listing.current, offset, identity: identityText(row.head ?? Buffer.alloc(0)) };
    this.lastSize.set(listing.current, size);
  }

  /**
   * A look back: `back` bytes before the end of the current file, continuing into the file before it
   * (same format, listed just before it) when the current one is shorter. The first chunk read is
   * handed to the poll as its `pre`.
   */
  private async startBack(tail: LogTail, listing: Listing, back: number): Promise<Listing['pre']> {
    const current = this.sizeOf(listing, listing.current) ?? 0;
    let file = listing.current;
    let size = current;
    let base = current - back;
    if (base < 0) {
      const same = listing.files.filter((f) => formatOfName(f.name) === formatOfName(listing.current));
      const at = same.findIndex((f) => f.name === path.posix.basename(listing.current));
      const prev = at > 0 ? same[at - 1]! : null;
      if (prev && prev.size > 0) {
        file = path.posix.join(path.posix.dirname(listing.current), prev.name);
        size = prev.size;
        base = Math.max(0, prev.size + base);
      } else base = 0;
    }
    // from one byte early: a newline there says `base` itself is an entry start
    const from = Math.max(0, base - 1);
    const length = size - from <= tail.chunkBytes ? size - from : TAIL_BYTES;
    const row = await this.read(file, from, length, HEAD_BYTES);
    const data = row.data ?? Buffer.alloc(0);
    const offset = base === 0 ? 0 : Math.min(firstBoundary(tail.format, data, from), from + data.length);
    const rest = data.subarray(offset - from);
    const first = tail.parser.peek(rest.subarray(0, TAIL_BYTES), offset).records[0];
    this.backStart = { file, offset, at: first?.time ? logTimeToIso(first.time, this.settings?.zone ?? null) : null };
    this.position = { file, offset, identity: identityText(row.head ?? Buffer.alloc(0)) };
    this.lastSize.set(file, size);
    return { file, offset, row: { head: row.head, data: rest } };
  }

  /**
   * Resumed from a saved cursor, in the same file (its first bytes unchanged): learn the connections
   * logged just before the cursor, as start() does before the end. stderr only (csvlog and jsonlog
   * name the client in every entry): without %h a failure's address is its backend's `connection
   * received` line, which a login in flight across a restart logged before the cursor.
   */
  private async primeBefore(tail: LogTail, listing: Listing): Promise<void> {
    const pos = this.position!;
    const id = parseIdentity(pos.identity);
    const head = listing.pre?.row.head;
    const size = this.sizeOf(listing, pos.file);
    if (tail.format !== 'stderr' || !id || !head || !sameHead(id, head.subarray(0, id.headLength))) return;
    if (size === null || pos.offset === 0 || pos.offset > size) return;
    const base = Math.max(0, pos.offset - TAIL_BYTES);
    const data = (await this.read(pos.file, base, pos.offset - base)).data ?? Buffer.alloc(0);
    const start = base === 0 ? 0 : firstBoundary(tail.format, data, base);
    tail.extractor.prime(tail.parser.peek(data.subarray(start - base), start));
  }

  /** The files written after `file` up to `current`, in the order written. */
  private successors(listing: Listing, file: string): string[] {
    const dir = path.posix.dirname(listing.current);
    const ext = (name: string) => formatOfName(name);
    const fmt = ext(listing.current);
    const same = listing.files.filter((f) => ext(f.name) === fmt);
    const oldName = path.posix.basename(file);
    const old = same.findIndex((f) => f.name === oldName);
    const after = old >= 0 ? same.slice(old + 1) : same.filter((f) => f.name > oldName);
    const names = after.map((f) => f.name);
    const cur = names.indexOf(path.posix.basename(listing.current));
    return (cur >= 0 ? names.slice(0, cur + 1) : [...names, path.posix.basename(listing.current)]).map((n) => path.posix.join(dir, n));
  }

  async poll(): Promise<AuthFailure[]> {
    const tail = await this.setup();
    const listing = await this.listing(tail);
    if (!this.position) {
      if (!this.opts.back) {
        await this.start(tail, listing);
        return [];
      }
      listing.pre = await this.startBack(tail, listing, this.opts.back);
    } else if (this.resumed) await this.primeBefore(tail, listing);
    this.resumed = false;
    const failures: AuthFailure[] = [];
    let budget = tail.pollBytes;
    for (;;) {
      const pos: LogCursor = this.position!; // set by startBack above, or by an earlier poll
      const rotated = pos.file !== listing.current;
      const pre = listing.pre?.file === pos.file ? listing.pre : null;
      const size = this.sizeOf(listing, pos.file);
      const drained = size === null ? null : await this.drainFile(tail, pos, size, rotated, budget, pre);
      if (drained) {
        failures.push(...drained.failures);
        budget -= drained.bytes;
        if (!drained.done) return failures;
      } else this.stats.lost++;
      if (!rotated) return failures;
      const next = this.successors(listing, pos.file)[0];
      if (!next) return failures;
      this.stats.rotations++;
      tail.parser.reset();
      this.position = { file: next, offset: 0, identity: null };
    }
  }

  /**
   * One file from the cursor: its identity checked (a new file under the old name, or truncated:
   * from 0), its first chunk the one the poll already read when there is one.
   */
  private async drainFile(
    tail: LogTail,
    pos: LogCursor,
    listed: number,
    rotated: boolean,
    budget: number,
    pre: Listing['pre'],
  ): Promise<Drained | null> {
    const from = tail.parser.resumeAt(pos.offset);
    const first = pre?.row ?? (await this.read(pos.file, from, Math.max(0, Math.min(tail.chunkBytes, listed - from, budget)), HEAD_BYTES));
    if (first.head === null) return null; // removed between the listing and now
    // the chunk may have been read a moment after the listing: the file is at least that long
    const size = Math.max(listed, from + (first.data?.length ?? 0));
    let cached = first.data && { offset: from, data: first.data };
    const id = parseIdentity(pos.identity);
    if ((id && !sameHead(id, first.head.subarray(0, id.headLength))) || size < pos.offset) {
      tail.parser.reset();
      pos.offset = 0;
      cached = null;
    }
    pos.identity = identityText(first.head);
    const settled = rotated || this.lastSize.get(pos.file) === size;
    this.lastSize = new Map([[pos.file, size]]);
    const read = async (offset: number, length: number): Promise<Buffer | null> => {
      if (cached && offset === cached.offset && length <= cached.data.length) {
        const data = cached.data.subarray(0, length);
        cached = null;
        return data;
      }
      return (await this.read(pos.file, offset, length)).data;
    };
    const drained = await tail.drain(read, pos.offset, size, settled, budget);
    pos.offset = drained.offset;
    return drained;
  }
}
