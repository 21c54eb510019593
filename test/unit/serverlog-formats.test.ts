// The three formats read from logs captured from real servers (test/fixtures/serverlog/: the
// embedded PostgreSQL 14.23 and 18.4, logging_collector on, log_destination stderr + csvlog (+
// jsonlog), log_connections on, log_line_prefix '%m [%p] %q%u@%d ', nine failed logins: a wrong
// password from 127.0.0.1 and 127.0.0.5, an unknown user, a user named `x" from host "10.0.0.1`,
// a NOLOGIN role, a pg_hba.conf reject line, no pg_hba.conf entry (from 127.0.0.7), an unknown
// user on a trust line, and a user `line\nbreak ü`).
import { describe, expect, it } from 'vitest';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { failuresIn, fixture } from '../helpers/serverlog-parse.js';

const HOSTILE = 'x" from host "10.0.0.1';

type Want = Pick<AuthFailure, 'user' | 'address' | 'kind' | 'sqlstate' | 'hbaLine'>;
const want = (
  user: string,
  address: string,
  kind: AuthFailure['kind'],
  sqlstate: AuthFailure['sqlstate'],
  hbaLine: number | null,
): Want => ({
  user,
  address,
  kind,
  sqlstate,
  hbaLine,
});

const NINE: Want[] = [
  want('alice', '127.0.0.1', 'password', '28P01', 3),
  want('alice', '127.0.0.5', 'password', '28P01', 4),
  want('ghost', '127.0.0.1', 'role_missing', '28P01', 3),
  want(HOSTILE, '127.0.0.1', 'role_missing', '28P01', 3),
  want('nol', '127.0.0.1', 'nologin', '28000', null),
  want('rej', '127.0.0.1', 'hba_reject', '28000', null),
  want('alice', '127.0.0.7', 'no_hba_entry', '28000', null),
  want('ho"st', '127.0.0.7', 'role_missing', '28000', null),
  want('line\nbreak ü', '127.0.0.1', 'role_missing', '28P01', 3),
];

const pick = (f: AuthFailure): Want => ({ user: f.user, address: f.address, kind: f.kind, sqlstate: f.sqlstate, hbaLine: f.hbaLine });

describe('csvlog', () => {
  it.each(['pg14.csv', 'pg18.csv'])('%s: the nine failures, a record with quoted newlines read whole', (name) => {
    const { failures, parser } = failuresIn('csvlog', fixture(name));
    expect(failures.map(pick)).toEqual(NINE);
    expect(failures.every((f) => f.database === 'postgres')).toBe(true);
    expect(parser.stats).toEqual({ oversized: 0, unreadable: 0 });
  });

  it('times in ISO 8601 with the offset, pids and messages as logged', () => {
    const [first, , , hostile] = failuresIn('csvlog', fixture('pg14.csv')).failures;
    expect(first).toEqual({
      at: '2026-12-01T14:53:22.467+00:00',
      user: 'alice',
      database: 'postgres',
      address: '127.0.0.1',
      sqlstate: '28P01',
      kind: 'password',
      message: 'password authentication failed for user "alice"',
      hbaLine: 3,
      pid: 11301,
    });
    expect(hostile!.message).toBe(`password authentication failed for user "${HOSTILE}"`);
  });

  it('a record cut inside a quoted newline is not taken, and the cursor stays before it', () => {
    const data = fixture('pg14.csv');
    const text = data.toString('utf8');
    const cut = Buffer.byteLength(text.slice(0, text.indexOf('Connection matched pg_hba.conf line 3', text.indexOf('"ghost"'))));
    const { failures, end } = failuresIn('csvlog', data.subarray(0, cut));
    expect(failures.map((f) => f.user)).toEqual(['alice', 'alice']);
    // the cursor is at the start of ghost's record, which begins with its timestamp
    expect(data.subarray(end, end + 24).toString()).toBe('2026-12-01 14:53:22.474 ');
    expect(data.subarray(end).toString()).toContain('"ghost"');
  });
});

describe('jsonlog', () => {
  it('pg18: the nine failures', () => {
    const { failures, parser } = failuresIn('jsonlog', fixture('pg18-jsonlog.txt'));
    expect(failures.map(pick)).toEqual(NINE);
    expect(failures[0]!.at).toBe('2026-12-01T14:53:25.750+00:00');
    expect(parser.stats.unreadable).toBe(0);
  });

  it('a partial last line is not taken', () => {
    const data = fixture('pg18-jsonlog.txt');
    const { failures, end } = failuresIn('jsonlog', data.subarray(0, data.length - 10));
    expect(failures).toHaveLength(8);
    expect(end).toBe(data.subarray(0, data.length - 1).lastIndexOf(0x0a) + 1);
  });
});

describe('stderr', () => {
  // a name with a newline breaks the prefix it is written into: that login cannot be read (and no
  // reading of the lines around it is trusted if it is short enough to be forged: serverlog-forgery)
  const EIGHT = NINE.slice(0, 8);

  it.each(['pg14-stderr.log', 'pg18-stderr.log'])("%s: Debian's prefix, the address from `connection received`", (name) => {
    const { failures, parser } = failuresIn('stderr', fixture(name));
    expect(failures.map(pick)).toEqual(EIGHT);
    expect(failures.every((f) => f.database === 'postgres' && f.pid !== null)).toBe(true);
    // the broken lines of the newline name: two pieces per line it was written into
    expect(parser.stats.unreadable).toBe(4);
  });

  it('the DETAIL on the next line belongs to its FATAL: the pg_hba.conf line and the missing role', () => {
    const log = [
      '2026-12-01 14:53:25.759 UTC [11383] ghost@postgres FATAL:  password authentication failed for user "ghost"',
      '2026-12-01 14:53:25.759 UTC [11383] ghost@postgres DETAIL:  Role "ghost" does not exist.',
      '\tConnection matched file "/etc/postgresql/18/main/pg_hba.conf" line 97: "host all all 0.0.0.0/0 scram-sha-256"',
      '',
    ].join('\n');
    const [f] = failuresIn('stderr', log).failures;
    expect(f).toMatchObject({ user: 'ghost', kind: 'role_missing', hbaLine: 97, address: null, pid: 11383 });
  });

  it('without settling, the last entries wait for what the server writes right after them', () => {
    const all = fixture('pg14-stderr.log');
    const data = all.subarray(0, all.indexOf('\n', all.indexOf('role "ho"st" does not exist')) + 1);
    const held = failuresIn('stderr', data, { settled: false });
    expect(held.failures.map(pick)).toEqual(EIGHT.slice(0, 7));
    expect(held.end).toBeLessThan(data.length);
    expect(held.end).toBeGreaterThanOrEqual(data.length - 256);
    expect(failuresIn('stderr', data, { settled: true }).failures.map(pick)).toEqual(EIGHT);
  });
});
