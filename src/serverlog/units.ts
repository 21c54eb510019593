// Cutting what was read from a log file into complete entries: lines (stderr, jsonlog) or CSV
// records (csvlog: a quoted field may hold newlines). Works on bytes, so offsets are exact byte
// offsets in the file and a chunk that ends inside a UTF-8 character is no problem (every byte
// that matters here is ASCII, and no byte of a multi-byte character is). A partial last entry is
// never taken: the caller reads it again once it is complete. The content is hostile (clients
// choose user and database names, and sometimes more): an entry longer than the cap is skipped,
// not buffered, and the skip resumes across reads.

const NL = 0x0a;
const QUOTE = 0x22;

export interface Unit {
  /** File offset of the entry's first byte. */
  offset: number;
  /** The entry without its terminating newline. */
  bytes: Buffer;
}

export interface ScanResult {
  units: Unit[];
  /** File offset just past the last complete entry (or the last skipped one). */
  end: number;
  /** Entries longer than the cap that were skipped. */
  oversized: number;
  /**
   * Non-null while an over-long entry is being skipped: the file offset to read on from. The
   * entry's own start stays `end`, so a persisted cursor never points into the middle of one.
   */
  skipping: number | null;
}

/**
 * Entries in `buf` (read from file offset `base`, which must be an entry boundary or, when
 * resuming a skip, the offset the last scan returned in `skipping`).
 */
export class UnitScanner {
  private skipFrom: number | null = null;
  private skipStart = 0;
  private inQuote = false;

  constructor(
    private readonly csv: boolean,
    private readonly maxEntry: number,
  ) {}

  /** Where the next read should start, given the cursor: past a skip in progress, else the cursor. */
  resumeAt(cursor: number): number {
    return this.skipFrom !== null && this.skipStart === cursor ? this.skipFrom : cursor;
  }

  /** Forget a skip in progress (the file changed under it). */
  reset(): void {
    this.skipFrom = null;
    this.inQuote = false;
  }

  scan(buf: Buffer, base: number): ScanResult {
    const units: Unit[] = [];
    let oversized = 0;
    let pos = 0;
    let end = base;
    if (this.skipFrom !== null) {
      if (base !== this.skipFrom) throw new Error(`scan resumed at ${base}, not at the skip's ${this.skipFrom}`);
      const stop = this.entryEnd(buf, 0, this.inQuote);
      if (stop.at < 0) {
        this.skipFrom = base + buf.length;
        this.inQuote = stop.inQuote;
        return { units, end: this.skipStart, oversized: 0, skipping: this.skipFrom };
      }
      oversized++;
      pos = stop.at + 1;
      end = base + pos;
      this.skipFrom = null;
    }
    while (pos < buf.length) {
      const stop = this.entryEnd(buf, pos, false);
      if (stop.at < 0) {
        if (buf.length - pos > this.maxEntry) {
          // no end in sight and already too long: skip it, resuming after what was read
          this.skipStart = base + pos;
          this.skipFrom = base + buf.length;
          this.inQuote = stop.inQuote;
          return { units, end: this.skipStart, oversized, skipping: this.skipFrom };
        }
        break; // a partial entry: read again next time
      }
      if (stop.at - pos > this.maxEntry) oversized++;
      else units.push({ offset: base + pos, bytes: buf.subarray(pos, stop.at) });
      pos = stop.at + 1;
      end = base + pos;
    }
    return { units, end, oversized, skipping: null };
  }

  /** Index of the newline that ends the entry starting at `from` (outside quotes for CSV), or -1. */
  private entryEnd(buf: Buffer, from: number, inQuote: boolean): { at: number; inQuote: boolean } {
    if (!this.csv) return { at: buf.indexOf(NL, from), inQuote: false };
    let q = inQuote;
    for (let i = from; i < buf.length; i++) {
      const b = buf[i];
      // PostgreSQL quotes a whole field and doubles quotes inside it, so parity tells in or out
      if (b === QUOTE) q = !q;
      else if (b === NL && !q) return { at: i, inQuote: false };
    }
    return { at: -1, inQuote: q };
  }
}
