// The reading loop both sources share: one file from the cursor's offset up to a size, in bounded
// chunks, through the format's parser and the failure extractor. The cursor only ever moves to an
// entry boundary the parser returned, so a partial last entry is read again next time, never lost
// and never taken twice.
import type { FailureContext } from './auth-failure.js';
import { FailureExtractor } from './extract.js';
import { DEFAULT_MAX_ENTRY, LogParser } from './parser.js';
import type { LogFormat } from './record.js';
import type { AuthFailure } from './types.js';

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_POLL_BYTES = 16 * 1024 * 1024;

export interface TailOptions {
  /** stderr: the server's log_line_prefix. */
  prefix?: string;
  /** log_timezone, or the host's zone. */
  zone?: string | null;
  /** log_hostname is on: the log's hosts are names the client controls, no address is taken (FailureContext.hostnames). */
  logHostname?: boolean;
  maxEntry?: number;
  /** Bytes per read (at least maxEntry, so that an entry that fits is always read whole). */
  chunkBytes?: number;
  /** Bytes per poll, across files: a backlog is read over several polls. */
  pollBytes?: number;
  now?: () => Date;
}

export interface Drained {
  failures: AuthFailure[];
  /** The offset the cursor moves to. */
  offset: number;
  /** Bytes read. */
  bytes: number;
  /** True when everything up to `size` was taken (nothing left but a partial or held entry). */
  done: boolean;
}

export class LogTail {
  readonly parser: LogParser;
  readonly extractor: FailureExtractor;
  readonly chunkBytes: number;
  readonly pollBytes: number;

  constructor(
    readonly format: LogFormat,
    opts: TailOptions = {},
  ) {
    const maxEntry = opts.maxEntry ?? DEFAULT_MAX_ENTRY;
    this.parser = new LogParser(format, { prefix: opts.prefix, maxEntry });
    const ctx: FailureContext = { zone: opts.zone ?? null, readAt: opts.now ?? (() => new Date()), hostnames: opts.logHostname ?? false };
    this.extractor = new FailureExtractor(ctx);
    this.chunkBytes = Math.max(opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, maxEntry + 1);
    this.pollBytes = opts.pollBytes ?? DEFAULT_POLL_BYTES;
  }

  /**
   * Read one file from `offset` up to `size` (at most `budget` bytes). `settled`: the file will not
   * grow past `size` before the next poll can see it (it has not grown since the last, or it was
   * rotated away).
   */
  async drain(
    read: (offset: number, length: number) => Promise<Buffer | null>,
    offset: number,
    size: number,
    settled: boolean,
    budget: number,
  ): Promise<Drained> {
    const failures: AuthFailure[] = [];
    let bytes = 0;
    let cursor = offset;
    for (;;) {
      const from = this.parser.resumeAt(cursor);
      const length = Math.min(this.chunkBytes, size - from, budget - bytes);
      if (length <= 0) return { failures, offset: cursor, bytes, done: from >= size };
      const buf = await read(from, length);
      if (buf === null) return { failures, offset: cursor, bytes, done: true }; // gone
      bytes += buf.length;
      const whole = from + buf.length >= size;
      const parsed = this.parser.parse(buf, from, settled && whole);
      failures.push(...this.extractor.take(parsed));
      const progressed = parsed.end > cursor || this.parser.resumeAt(parsed.end) > from;
      cursor = parsed.end;
      if (buf.length < length || whole || !progressed) return { failures, offset: cursor, bytes, done: whole || buf.length < length };
    }
  }
}
