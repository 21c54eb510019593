// log_line_prefix compiled from the server's setting and matched against lines: the escapes that
// matter, padding, %q, and every reading of a line a name makes ambiguous.
import { describe, expect, it } from 'vitest';
import { compilePrefix, matchHead, matchPrefix } from '../../src/serverlog/prefix.js';
import { forgeableBytes } from '../../src/serverlog/stderr.js';

const read = (prefix: string, line: string) =>
  matchPrefix(compilePrefix(prefix), line).map((r) => ({ ...r.fields, level: r.level, text: line.slice(r.rest), session: r.session }));

describe('log_line_prefix', () => {
  it("Debian's `%m [%p] %q%u@%d `: a session line and a postmaster line", () => {
    expect(read('%m [%p] %q%u@%d ', '2026-12-01 14:30:01.145 UTC [10733] alice@postgres FATAL:  password authentication failed')).toEqual([
      {
        time: '2026-12-01 14:30:01.145 UTC',
        pid: '10733',
        user: 'alice',
        database: 'postgres',
        level: 'FATAL',
        text: 'password authentication failed',
        session: true,
      },
    ]);
    expect(read('%m [%p] %q%u@%d ', '2026-12-01 14:30:01.051 UTC [10723] LOG:  database system is ready')).toEqual([
      { time: '2026-12-01 14:30:01.051 UTC', pid: '10723', level: 'LOG', text: 'database system is ready', session: false },
    ]);
  });

  it('%t %h %r %a %e %l %c %% and padding', () => {
    const [r] = read(
      '%t %h [%-6p] %a %e %l %c 100%% ',
      '2026-12-01 14:30:01 CET 10.0.0.5 [42    ] psql 28P01 3 6b0ed9e9.29ec 100% FATAL:  x',
    );
    expect(r).toEqual({
      time: '2026-12-01 14:30:01 CET',
      host: '10.0.0.5',
      pid: '42',
      app: 'psql',
      sqlstate: '28P01',
      level: 'FATAL',
      text: 'x',
      session: true,
    });
    expect(read('%m %r ', '2026-12-01 14:30:01.145 UTC 10.0.0.5(51234) LOG:  y')).toMatchObject([{ host: '10.0.0.5(51234)' }]);
    expect(read('%r ', '[local] LOG:  y')).toMatchObject([{ host: '[local]' }]);
  });

  it('a user holding the separator or ` FATAL:  ` gives every reading; none is chosen here', () => {
    const line = '2026-12-01 14:30:01.145 UTC [7] a@b@postgres FATAL:  password authentication failed for user "a@b"';
    expect(read('%m [%p] %q%u@%d ', line).map((r) => [r.user, r.database])).toEqual([
      ['a', 'b@postgres'],
      ['a@b', 'postgres'],
    ]);
  });

  it('a line that does not start with the prefix has no reading; its cut-off start is told apart', () => {
    const p = compilePrefix('%m [%p] %q%u@%d ');
    expect(matchPrefix(p, 'break ü@postgres FATAL:  password')).toEqual([]);
    expect(matchPrefix(p, '2026-12-01 14:30:01.173 UTC [10741] line')).toEqual([]);
    expect(matchHead(p, '2026-12-01 14:30:01.173 UTC [10741] line')).toBe(true);
    expect(matchHead(p, 'break ü@postgres FATAL:  password')).toBe(false);
  });

  it('the escapes a reader needs to know about', () => {
    expect([...compilePrefix('%m [%p] %q%u@%d ').escapes].sort()).toEqual(['d', 'm', 'p', 'u']);
    expect(compilePrefix('%m %h %%u').escapes.has('u')).toBe(false);
  });

  it('how much client text one prefix can hold: two names at 63 bytes and what is between them', () => {
    expect(forgeableBytes(compilePrefix('%m [%p] %q%u@%d '))).toBe(127);
    expect(forgeableBytes(compilePrefix('%m [%p] %h '))).toBe(0);
    expect(forgeableBytes(compilePrefix('%m [%p] user=%u '))).toBe(63);
  });

  it('a line a name makes ambiguous in many ways gives a bounded number of readings', () => {
    const line = `2026-12-01 14:30:01.145 UTC [7] ${'@ FATAL:  '.repeat(60)}@x FATAL:  x`;
    const readings = read('%m [%p] %q%u@%d ', line);
    expect(readings.length).toBe(8);
  });
});
