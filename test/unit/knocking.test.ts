// Who is still knocking, the pure parts: where a look back into the log begins (firstBoundary:
// at an entry start, never inside a csvlog quoted field that looks like one), and a role's
// failures summed up by address (its exact name only, counts, kinds, times, pg_hba.conf lines).
import { describe, expect, it } from 'vitest';
import { summarize } from '../../src/inspect/failed-logins.js';
import { firstBoundary } from '../../src/serverlog/boundary.js';
import type { AuthFailure } from '../../src/serverlog/types.js';

describe('firstBoundary (where a look back starts)', () => {
  const rec = (n: number) =>
    `2026-12-01 14:53:22.4${n}0 UTC,"u",,1,,,,,,,0,LOG,00000,"line ${n}\n2026-12-01 14:53:22.000 UTC,not a record",,,,,,,,,"","client backend",,0\n`;

  it('lines: after the first newline; a newline as the first byte (read from one byte early) is a start right there', () => {
    expect(firstBoundary('jsonlog', Buffer.from('a":1}\n{"b":2}\n'), 100)).toBe(106);
    expect(firstBoundary('stderr', Buffer.from('\n2026-12-01 x\n'), 99)).toBe(100);
    expect(firstBoundary('jsonlog', Buffer.from('no newline'), 100)).toBe(110);
  });

  it('csvlog: not at a line inside a quoted field that looks like a record start', () => {
    // from inside rec(1)'s quoted message: its second line looks like a record and is none
    const whole = `${rec(1)}${rec(2)}`;
    const from = whole.indexOf('line 1');
    const at = firstBoundary('csvlog', Buffer.from(whole.slice(from)), 1000 + from);
    expect(at).toBe(1000 + rec(1).length);
  });
});

function failure(
  user: string,
  address: string | null,
  at: string,
  kind: AuthFailure['kind'] = 'password',
  hbaLine: number | null = 2,
): AuthFailure {
  return { at, user, database: 'postgres', address, sqlstate: kind === 'password' ? '28P01' : '28000', kind, message: '', hbaLine, pid: 1 };
}

describe('summarize', () => {
  it("a role's attempts by address, most first (then the latest); another role's (also one differing only in case) left out", () => {
    const fs = [
      failure('mallory', '10.0.0.1', '2026-12-01T10:00:01.000+00:00'),
      failure('Mallory', '10.0.0.1', '2026-12-01T10:00:02.000+00:00'),
      failure('mallory', '10.0.0.2', '2026-12-01T11:00:00.000+01:00', 'nologin', null),
      failure('mallory', '10.0.0.2', '2026-12-01T10:00:05.000+00:00', 'hba_reject', null),
      failure('mallory', null, '2026-12-01T10:00:06.000+00:00', 'password', 7),
    ];
    const s = summarize('mallory', fs);
    expect(s.count).toBe(4);
    expect(s.first).toBe('2026-12-01T11:00:00.000+01:00'); // 10:00:00 UTC: times compared as instants
    expect(s.last).toBe('2026-12-01T10:00:06.000+00:00');
    expect(s.kinds).toEqual({ password: 2, nologin: 1, hba_reject: 1 });
    expect(s.hbaLines).toEqual([
      { line: 2, count: 1 },
      { line: 7, count: 1 },
    ]);
    expect(s.addresses.map((a) => [a.address, a.count, a.first, a.last, a.kinds, a.hbaLines])).toEqual([
      ['10.0.0.2', 2, '2026-12-01T11:00:00.000+01:00', '2026-12-01T10:00:05.000+00:00', { nologin: 1, hba_reject: 1 }, []],
      [null, 1, '2026-12-01T10:00:06.000+00:00', '2026-12-01T10:00:06.000+00:00', { password: 1 }, [7]],
      ['10.0.0.1', 1, '2026-12-01T10:00:01.000+00:00', '2026-12-01T10:00:01.000+00:00', { password: 1 }, [2]],
    ]);
    expect(s.addressCount).toBe(3);
    expect(summarize('nobody', fs)).toMatchObject({ count: 0, first: null, last: null, addresses: [], addressCount: 0 });
  });

  it('at most 100 addresses listed, all counted', () => {
    const fs = Array.from({ length: 150 }, (_, i) =>
      failure('m', `10.0.${i >> 8}.${i & 255}`, `2026-12-01T10:00:00.${String(i).padStart(3, '0')}Z`),
    );
    const s = summarize('m', fs);
    expect(s.addresses).toHaveLength(100);
    expect(s.addressCount).toBe(150);
    expect(s.count).toBe(150);
  });
});
