// One format's reader over what a source has read: complete entries -> LogRecords, the file offset
// a cursor may move to, and counts of what was thrown away. For stderr, the entries of the last
// FORGERY_REACH bytes wait for the next read while the file is still growing, so that the remains
// of a forged line (stderr.ts), which the server writes right after it, are seen with it.
import { csvlogRecord } from './csvlog.js';
import { jsonlogRecord } from './jsonlog.js';
import { compilePrefix, type CompiledPrefix } from './prefix.js';
import type { LogFormat, LogRecord } from './record.js';
import { FORGERY_REACH, forgeableBytes, parseStderr, type Span } from './stderr.js';
import { UnitScanner, type ScanResult } from './units.js';

/** Longest entry read; longer ones (a huge statement logged) are skipped. */
export const DEFAULT_MAX_ENTRY = 64 * 1024;
/** Debian's (and the postgresql.conf sample's) default log_line_prefix since PostgreSQL 10 is `%m [%p] `; Debian's packages add `%q%u@%d `. */
export const DEBIAN_PREFIX = '%m [%p] %q%u@%d ';

export interface ParserOptions {
  /** stderr: the server's log_line_prefix. */
  prefix?: string;
  maxEntry?: number;
}

export interface ParseStats {
  oversized: number;
  /** Entries that are not of the format (a torn record, another program's output). */
  unreadable: number;
}

export interface Parsed {
  /** Every complete entry read, those held back included (their forgery evidence counts now). */
  records: LogRecord[];
  /** File offset a cursor may move to: the entries before it are taken, those from it on are read again next time. */
  end: number;
  /** stderr: lines that are no entry, and how much client text one prefix can hold (stderr.ts). */
  foreign?: Span[];
  forgeable?: number;
}

export class LogParser {
  private readonly scanner: UnitScanner;
  private readonly prefix: CompiledPrefix | null;
  private readonly forgeable: number;
  readonly stats: ParseStats = { oversized: 0, unreadable: 0 };

  constructor(
    readonly format: LogFormat,
    private readonly opts: ParserOptions = {},
  ) {
    this.scanner = new UnitScanner(format === 'csvlog', opts.maxEntry ?? DEFAULT_MAX_ENTRY);
    this.prefix = format === 'stderr' ? compilePrefix(opts.prefix ?? DEBIAN_PREFIX) : null;
    this.forgeable = this.prefix ? forgeableBytes(this.prefix) : 0;
  }

  /** Where to read on from, for a cursor at `offset` (past an over-long entry being skipped). */
  resumeAt(offset: number): number {
    return this.scanner.resumeAt(offset);
  }

  /** The file changed under the cursor (truncated, replaced, another file): forget a skip in progress. */
  reset(): void {
    this.scanner.reset();
  }

  /** The entries in `buf` read by a parser of their own (this one's state and counts untouched). */
  peek(buf: Buffer, base: number): Parsed {
    return new LogParser(this.format, this.opts).parse(buf, base, true);
  }

  /**
   * Entries in `buf`, read at file offset `base`. `settled`: the file has not grown since the last
   * read (or never will again: rotated away), so nothing needs to wait for what follows.
   */
  parse(buf: Buffer, base: number, settled: boolean): Parsed {
    const scan = this.scanner.scan(buf, base);
    this.stats.oversized += scan.oversized;
    if (this.prefix) {
      const { records, foreign } = parseStderr(this.prefix, scan.units);
      const holdFrom = settled || scan.skipping !== null ? Infinity : scan.end - FORGERY_REACH;
      const held = records.find((r) => r.offset >= holdFrom);
      const end = held ? held.offset : scan.end;
      // foreign lines are counted once, when the cursor passes them
      this.stats.unreadable += foreign.filter((f) => f.offset < end).length;
      return { records, end, foreign, forgeable: this.forgeable };
    }
    if (this.format === 'jsonlog') {
      const records = scan.units.map(jsonlogRecord).filter((r) => r !== null);
      this.stats.unreadable += scan.units.length - records.length;
      return { records, end: scan.end };
    }
    return this.csv(buf, base, scan);
  }

  /**
   * csvlog records. One that does not read as csvlog means the quote count went wrong (a start
   * inside a quoted field): read again from the next line start, with the quotes counted afresh.
   */
  private csv(buf: Buffer, base: number, scan: ScanResult): Parsed {
    const records: LogRecord[] = [];
    for (;;) {
      const bad = scan.units.findIndex((u) => csvlogRecord(u) === null);
      records.push(...scan.units.slice(0, bad < 0 ? undefined : bad).map((u) => csvlogRecord(u)!));
      if (bad < 0) return { records, end: scan.end };
      this.stats.unreadable++;
      const unit = scan.units[bad]!;
      const nl = unit.bytes.indexOf(0x0a);
      const from = unit.offset - base + (nl < 0 ? unit.bytes.length + 1 : nl + 1);
      scan = this.scanner.scan(buf.subarray(from), base + from);
      this.stats.oversized += scan.oversized;
    }
  }
}
