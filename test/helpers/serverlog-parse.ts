// The server log reader run over bytes in memory, for the unit tests: a format's parser and the
// failure extractor, as the sources run them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FailureExtractor } from '../../src/serverlog/extract.js';
import { LogParser } from '../../src/serverlog/parser.js';
import type { LogFormat } from '../../src/serverlog/record.js';
import type { AuthFailure } from '../../src/serverlog/types.js';

/** A log captured from a real server (test/fixtures/serverlog/). */
export function fixture(name: string): Buffer {
  return readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'serverlog', name));
}

export interface Run {
  failures: AuthFailure[];
  end: number;
  parser: LogParser;
  extractor: FailureExtractor;
}

/** Every failure in `data` (read whole, the file settled), and where a cursor would stop. */
export function failuresIn(
  format: LogFormat,
  data: Buffer | string,
  opts: { prefix?: string; settled?: boolean; hostnames?: boolean } = {},
): Run {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const parser = new LogParser(format, { prefix: opts.prefix });
  const extractor = new FailureExtractor({ zone: 'UTC', readAt: () => new Date(0), hostnames: opts.hostnames });
  const parsed = parser.parse(buf, 0, opts.settled ?? true);
  return { failures: extractor.take(parsed), end: parsed.end, parser, extractor };
}
