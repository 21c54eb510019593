// stderr forgery: log_line_prefix is written unescaped, so a newline in a client's user or database
// name starts a line of the client's making. The lines here are written the way elog.c writes them
// (send_message_to_server_log: the prefix, `LEVEL:  `, the message with each newline followed by a
// tab; the DETAIL on a line of its own with the same prefix), for names of at most 63 bytes, as
// the server cuts them. What must hold: no forged entry is counted, and no real failure beside a
// forgery is lost (else a forger could hide its own password guesses).
import { describe, expect, it } from 'vitest';
import { failuresIn } from '../helpers/serverlog-parse.js';

interface Backend {
  time: string;
  pid: number;
  user: string;
  db: string;
}

/** One ereport as the server writes it with this prefix: FATAL (or LOG) line, then its DETAIL. */
function ereport(prefix: (b: Backend) => string, b: Backend, level: string, message: string, detail?: string): string {
  const tabbed = (s: string) => s.replace(/\n/g, '\n\t');
  return `${prefix(b)}${level}:  ${tabbed(message)}\n${detail === undefined ? '' : `${prefix(b)}DETAIL:  ${tabbed(detail)}\n`}`;
}

const debian = (b: Backend) => `${b.time} [${b.pid}] ${b.user}@${b.db} `;
const receivedLine = (prefix: (b: Backend) => string, time: string, pid: number, host: string) =>
  ereport(prefix, { time, pid, user: '[unknown]', db: '[unknown]' }, 'LOG', `connection received: host=${host} port=50000`);
const matched = 'Connection matched pg_hba.conf line 3: "host all all 127.0.0.0/8 scram-sha-256"';

/** A password failure of `user`: the receipt line, then the FATAL and its DETAIL. */
function passwordFailure(prefix: (b: Backend) => string, b: Backend, host: string, missing: boolean): string {
  const detail = missing ? `Role "${b.user}" does not exist.\n${matched}` : matched;
  return (
    receivedLine(prefix, b.time, b.pid, host) + ereport(prefix, b, 'FATAL', `password authentication failed for user "${b.user}"`, detail)
  );
}

const T = '2026-12-01 14:30:01.145 UTC';

describe("stderr forgery, Debian's prefix `%m [%p] %q%u@%d `", () => {
  it('a forged `connection received` and a forged NOLOGIN failure of alice, between real failures: only the real ones count', () => {
    const receiptUser = `\n${T} [77777] [unknown]`;
    const receiptDb = `[unknown] LOG:  connection received: host=10.9.9.9 port=1\n`;
    const fatalUser = `\n${T} [77777] alice`;
    const fatalDb = `x FATAL:  role "alice" is not permitted to log in\n`;
    for (const s of [receiptUser, receiptDb, fatalUser, fatalDb]) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(63);
    const log = [
      receivedLine(debian, T, 100, '127.0.0.9'),
      ereport(debian, { time: T, pid: 100, user: 'bob', db: 'postgres' }, 'FATAL', 'role "bob" is not permitted to log in'),
      passwordFailure(debian, { time: T, pid: 101, user: 'alice', db: 'postgres' }, '127.0.0.31', false),
      passwordFailure(debian, { time: T, pid: 102, user: receiptUser, db: receiptDb }, '127.0.0.32', true),
      passwordFailure(debian, { time: T, pid: 103, user: fatalUser, db: fatalDb }, '127.0.0.32', true),
      receivedLine(debian, T, 104, '127.0.0.10'),
      ereport(debian, { time: T, pid: 104, user: 'carol', db: 'postgres' }, 'FATAL', 'role "carol" is not permitted to log in'),
      passwordFailure(debian, { time: T, pid: 105, user: 'alice', db: 'postgres' }, '127.0.0.33', false),
    ].join('');
    // the forgery is real: the lines are in the log as lines of their own
    expect(log.split('\n')).toContain(`${T} [77777] alice@x FATAL:  role "alice" is not permitted to log in`);
    const { failures, extractor } = failuresIn('stderr', log);
    expect(failures.map((f) => [f.user, f.address, f.kind, f.pid])).toEqual([
      ['bob', '127.0.0.9', 'nologin', 100],
      ['alice', '127.0.0.31', 'password', 101],
      ['carol', '127.0.0.10', 'nologin', 104],
      ['alice', '127.0.0.33', 'password', 105],
    ]);
    expect(extractor.stats.suspect).toBeGreaterThan(0);
  });
});

describe('stderr forgery that leaves no broken line: `%t [%p] %q%u@%d `', () => {
  // %t is 4 bytes shorter than %m: short enough that both halves of the real line read as lines too
  const prefix = (b: Backend) => `${b.time} [${b.pid}] ${b.user}@${b.db} `;
  const t = '2026-12-01 14:30:01 UTC';
  const z = '2026-12-01 14:30:01 Z';

  it('the real line reads whole on both sides of the forged one, but its %u is not the user its message names', () => {
    // the real line starts `<time> [pid] @ LOG:  ` (a harmless LOG), ends `<time> [1] @ FATAL:  ...` (%u empty)
    const receiptUser = `@ LOG:  \n${z} [7] `;
    const receiptDb = ` LOG:  connection received: host=::\n${z} [1] @`;
    const fatalUser = `@ LOG:  \n${z} [7] v`;
    const fatalDb = ` FATAL:  role "v" does not exist\n${z} [1] @`;
    for (const s of [receiptUser, receiptDb, fatalUser, fatalDb]) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(63);
    const log = [
      passwordFailure(prefix, { time: t, pid: 201, user: 'alice', db: 'postgres' }, '127.0.0.41', false),
      passwordFailure(prefix, { time: t, pid: 202, user: receiptUser, db: receiptDb }, '127.0.0.42', true),
      passwordFailure(prefix, { time: t, pid: 203, user: fatalUser, db: fatalDb }, '127.0.0.42', true),
      passwordFailure(prefix, { time: t, pid: 204, user: 'alice', db: 'postgres' }, '127.0.0.43', false),
    ].join('');
    const lines = log.split('\n');
    expect(lines).toContain(`${z} [7] v@ FATAL:  role "v" does not exist`);
    // not one line of it is broken: every line starts with the prefix or with a tab
    const { failures, parser } = failuresIn('stderr', log, { prefix: '%t [%p] %q%u@%d ' });
    expect(parser.stats.unreadable).toBe(0);
    expect(failures.map((f) => [f.user, f.address, f.kind, f.pid])).toEqual([
      ['alice', '127.0.0.41', 'password', 201],
      ['alice', '127.0.0.43', 'password', 204],
    ]);
  });
});

describe('stderr without client text in the prefix', () => {
  it('`%m [%p] %h `: a newline in a name cannot reach the prefix; the message keeps it, tab-continued', () => {
    const prefix = (b: Backend) => `${b.time} [${b.pid}] 127.0.0.50 `;
    const user = `\n${T} [7] 10.9.9.9 FATAL:  role "alice" is not permitted to log in`;
    const log = ereport(
      prefix,
      { time: T, pid: 301, user, db: 'postgres' },
      'FATAL',
      `password authentication failed for user "${user}"`,
      `Role "${user}" does not exist.\n${matched}`,
    );
    const { failures } = failuresIn('stderr', log, { prefix: '%m [%p] %h ' });
    expect(failures.map((f) => [f.user, f.address, f.kind, f.pid])).toEqual([[user, '127.0.0.50', 'role_missing', 301]]);
  });
});
