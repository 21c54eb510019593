// The lockout policy (src/lockout/policy.ts), pure: what counts, when a key locks, knocks, expiry, bounds.
import { describe, expect, it } from 'vitest';
import {
  MAX_ACTIVE_LOCKOUTS,
  MAX_LOCKOUTS_PER_ROLE,
  MAX_TRACKED_KEYS,
  MAX_WIDE_LOCKOUTS,
  recorded,
  Tally,
  type NewLockout,
} from '../../src/lockout/policy.js';
import type { Lockout } from '../../src/lockout/types.js';
import type { AuthFailure, AuthFailureKind } from '../../src/serverlog/types.js';
import { testPolicy as policy } from '../helpers/lockout.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const fail = (user: string, address: string | null, atMs = T0, kind: AuthFailureKind = 'password'): AuthFailure => ({
  at: new Date(atMs).toISOString(),
  user,
  database: 'postgres',
  address,
  sqlstate: kind === 'password' ? '28P01' : '28000',
  kind,
  message: `password authentication failed for user "${user}"`,
  hbaLine: null,
  pid: 1,
});
const times = <T = AuthFailure>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
let seq = 0;
/** A lockout the policy decided on, recorded and in force on node n1. */
const stored = (n: NewLockout): Lockout => ({ ...recorded(n, (++seq).toString(16).padStart(16, '0'), ['n1']), applied: ['n1'] });

describe('lockout policy', () => {
  it('locks the (role, address) pair after N failures within the window, and only that pair', () => {
    const t = new Tally(policy());
    const d = t.decide(
      [
        ...times(3, (i) => fail('alice', '127.0.0.2', T0 + i)),
        ...times(2, (i) => fail('alice', '127.0.0.3', T0 + i)),
        fail('bob', '127.0.0.2'),
      ],
      [],
      T0 + 10,
    );
    expect(d.lock.map((l) => [l.kind, l.role, l.address, l.count])).toEqual([['address', 'alice', '127.0.0.2', 3]]);
    expect(d.lock[0]!.since).toBe(new Date(T0 + 10).toISOString());
    expect(d.lock[0]!.until).toBe(new Date(T0 + 10 + 900_000).toISOString());
  });

  it('counts across calls, but not failures further apart than the window, nor ones older than the window', () => {
    const t = new Tally(policy());
    expect(t.decide([fail('alice', '10.0.0.1', T0)], [], T0).lock).toEqual([]);
    expect(t.decide([fail('alice', '10.0.0.1', T0 + 300_000)], [], T0 + 300_000).lock).toEqual([]);
    // the first is now more than 10 minutes before the third
    expect(t.decide([fail('alice', '10.0.0.1', T0 + 700_000)], [], T0 + 700_000).lock).toEqual([]);
    expect(t.decide([fail('alice', '10.0.0.1', T0 + 710_000)], [], T0 + 710_000).lock).toHaveLength(1);
    // a log read late: three failures an hour old lock nothing
    const late = new Tally(policy());
    expect(
      late.decide(
        times(3, (i) => fail('bob', '10.0.0.1', T0 + i)),
        [],
        T0 + 3_600_000,
      ).lock,
    ).toEqual([]);
  });

  it('role mode locks the role from everywhere, Unix-socket failures included', () => {
    const t = new Tally(policy({ by: 'role' }));
    const d = t.decide([fail('alice', '10.0.0.1'), fail('alice', '10.0.0.2'), fail('alice', null)], [], T0);
    expect(d.lock.map((l) => [l.kind, l.role, l.address])).toEqual([['role', 'alice', null]]);
  });

  it('bans an address across roles, unknown names included; unknown names never lock a pair', () => {
    const t = new Tally(policy({ banAddressAfter: 4 }));
    const d = t.decide(
      [
        fail('ghost1', '10.9.9.9', T0, 'role_missing'),
        fail('ghost2', '10.9.9.9', T0, 'role_missing'),
        fail('ghost1', '10.9.9.9', T0, 'role_missing'),
        fail('ghost1', '10.9.9.9', T0, 'role_missing'),
      ],
      [],
      T0,
    );
    expect(d.lock.map((l) => [l.kind, l.role, l.address, l.count])).toEqual([['address_ban', null, '10.9.9.9', 4]]);
  });

  it('never counts excluded roles and addresses (CIDR)', () => {
    const t = new Tally(policy({ excludeRoles: ['break_glass'], excludeAddresses: ['10.1.0.0/16', '2001:db8::/32'], banAddressAfter: 3 }));
    const fs = [
      ...times(5, () => fail('break_glass', '10.2.0.1')),
      ...times(5, () => fail('alice', '10.1.2.3')),
      ...times(5, () => fail('alice', '2001:db8::5')),
    ];
    expect(t.decide(fs, [], T0).lock).toEqual([]);
  });

  it('spares only what would refuse the engine’s own login: its role from its address, NOLOGIN of its role, a ban of its address; said', () => {
    const self = { roles: new Set(['guard']), addresses: new Set(['10.4.0.1']) };
    const t = new Tally(policy({ banAddressAfter: 6 }));
    const d = t.decide(
      [
        ...times(3, () => fail('guard', '10.4.0.1')),
        ...times(3, () => fail('alice', '10.4.0.1')),
        ...times(3, () => fail('guard', '10.3.0.1')),
      ],
      [],
      T0,
      self,
    );
    expect(d.lock.map((l) => [l.kind, l.role, l.address])).toEqual([
      ['address', 'alice', '10.4.0.1'],
      ['address', 'guard', '10.3.0.1'],
    ]);
    expect(d.capped).toEqual([
      `"guard" from 10.4.0.1 is not locked: it would refuse the engine's own connection (its login role from its address)`,
      `the ban of 10.4.0.1 is not made: it would refuse the engine's own connection (it connects from there); its roles' pairs still lock`,
    ]);
    const r = new Tally(policy({ by: 'role' })).decide(
      [...times(3, () => fail('guard', null)), ...times(3, () => fail('alice', null))],
      [],
      T0,
      self,
    );
    expect(r.lock.map((l) => [l.kind, l.role])).toEqual([['role', 'alice']]);
    expect(r.capped).toEqual([`"guard" is not set NOLOGIN: it would refuse the engine's own connection (its login role)`]);
  });

  it('a failure against a lockout in force is a knock: counted, never extending it, never counting toward the next', () => {
    const t = new Tally(policy());
    const [made] = t.decide(
      times(3, () => fail('alice', '127.0.0.2')),
      [],
      T0,
    ).lock;
    const l = stored(made!);
    const d = t.decide(
      times(50, (i) => fail('alice', '127.0.0.2', T0 + 1000 + i, 'hba_reject')),
      [l],
      T0 + 2000,
    );
    expect(d.lock).toEqual([]);
    expect(d.knocks.get(l.id)).toEqual({ count: 50, last: new Date(T0 + 1049).toISOString() });
    // it ends when its time is up, however much it was knocked on; the knocks did not count: fresh failures lock again
    const end = Date.parse(l.until);
    const e = t.decide([fail('alice', '127.0.0.2', end - 1)], [l], end);
    expect(e.expire).toEqual([l.id]);
    expect(e.lock).toEqual([]);
    expect(
      t.decide(
        times(2, (i) => fail('alice', '127.0.0.2', end + i)),
        [{ ...l, ended: { at: '', why: 'expired' } }],
        end + 5,
      ).lock,
    ).toHaveLength(1);
  });

  it('knocks on a pair lockout still count toward the address ban', () => {
    const t = new Tally(policy({ banAddressAfter: 5 }));
    const [pair] = t.decide(
      times(3, () => fail('alice', '10.0.0.7')),
      [],
      T0,
    ).lock;
    const d = t.decide(
      times(2, () => fail('alice', '10.0.0.7', T0 + 1, 'hba_reject')),
      [stored(pair!)],
      T0 + 2,
    );
    expect(d.lock.map((l) => l.kind)).toEqual(['address_ban']);
  });

  it('failures after the Nth in one batch are knocks on the new lockout, not a second one', () => {
    const t = new Tally(policy());
    const d = t.decide(
      times(10, (i) => fail('alice', '10.0.0.1', T0 + i)),
      [],
      T0 + 20,
    );
    expect(d.lock).toHaveLength(1);
    expect([...d.knocks.values()]).toEqual([{ count: 7, last: new Date(T0 + 9).toISOString() }]);
  });

  it('keys IPv4-mapped IPv6 apart from IPv4 (an IPv4 rule never matches such a client) and skips host names', () => {
    const t = new Tally(policy());
    const d = t.decide([...times(3, () => fail('a', '::ffff:10.0.0.1')), ...times(3, () => fail('a', 'client.example.com'))], [], T0);
    expect(d.lock.map((l) => l.address)).toEqual(['::ffff:a00:1']);
  });

  it('does not lock names pg_hba.conf cannot hold exactly (line breaks, a leading slash)', () => {
    const t = new Tally(policy());
    expect(
      t.decide(
        [...times(3, () => fail('evil\nhost all all 0.0.0.0/0 trust', '10.0.0.1')), ...times(3, () => fail('/^a', '10.0.0.1'))],
        [],
        T0,
      ).lock,
    ).toEqual([]);
  });

  it(`tracks at most ${MAX_TRACKED_KEYS} keys of a sort: an attacker inventing addresses pushes out the oldest, never the busiest`, () => {
    const t = new Tally(policy({ banAddressAfter: 3 }));
    t.decide(
      times(2, () => fail('alice', '10.0.0.1', T0)),
      [],
      T0,
    );
    const flood = times(MAX_TRACKED_KEYS + 500, (i) => fail('alice', `2001:db8::${i.toString(16)}`, T0 + 1));
    const d = t.decide(flood, [], T0 + 2);
    expect(t.tracked().pairs).toBeLessThanOrEqual(MAX_TRACKED_KEYS);
    expect(t.tracked().addresses).toBeLessThanOrEqual(MAX_TRACKED_KEYS);
    expect(d.capped.join('\n')).toMatch(/forgot/);
    // the busy key was among the oldest: forgotten, so it starts again (the bound costs that, not memory)
    expect(t.decide([fail('alice', '10.0.0.1', T0 + 3)], [], T0 + 3).lock).toEqual([]);
    // a key failing during the flood is kept
    const u = new Tally(policy());
    const mixed = times(MAX_TRACKED_KEYS + 500, (i) =>
      i % 1000 === 0 ? fail('bob', '10.0.0.9', T0 + 1) : fail('alice', `2001:db8::${i.toString(16)}`, T0 + 1),
    );
    expect(u.decide(mixed, [], T0 + 2).lock.map((l) => l.role)).toEqual(['bob']);
  });

  const held = (n: number, f: (i: number) => Partial<NewLockout>): Lockout[] =>
    times(n, (i) =>
      stored({
        kind: 'address',
        role: 'r',
        address: '10.0.0.1',
        count: 1,
        since: '',
        until: new Date(T0 + 1e6).toISOString(),
        reason: '',
        ...f(i),
      }),
    );

  it('merges pair lockouts of one role within a /24 into one prefix lockout, counts summed; the prefix then only knocks', () => {
    const t = new Tally(policy({ after: 2 }));
    const d1 = t.decide([fail('alice', '10.0.0.5'), fail('alice', '10.0.0.5', T0 + 1)], [], T0 + 2);
    expect(d1.lock.map((l) => l.address)).toEqual(['10.0.0.5']);
    const first = stored(d1.lock[0]!);
    const d2 = t.decide(
      times(3, (i) => fail('alice', '10.0.0.6', T0 + 3 + i)),
      [first],
      T0 + 10,
    );
    expect(d2.lock.map((l) => [l.role, l.address, l.count, l.replaces])).toEqual([['alice', '10.0.0.0/24', 4, [first.id]]]);
    expect(d2.lock[0]!.reason).toMatch(/^2 addresses of 10\.0\.0\.0\/24: /);
    expect(d2.knocks.get('new:address\0alice\x0010.0.0.0/24')?.count).toBe(1);
    const prefix = stored(d2.lock[0]!);
    const d3 = t.decide(
      times(5, (i) => fail('alice', `10.0.0.${100 + i}`, T0 + 20)),
      [{ ...first, ended: { at: '', why: 'merged' } }, prefix],
      T0 + 21,
    );
    expect(d3.lock).toEqual([]);
    expect(d3.knocks.get(prefix.id)?.count).toBe(5);
    // another role, another /24: their own
    const d4 = t.decide(
      [fail('bob', '10.0.0.7'), fail('bob', '10.0.0.7'), fail('alice', '10.0.1.1'), fail('alice', '10.0.1.1')],
      [prefix],
      T0 + 22,
    );
    expect(d4.lock.map((l) => [l.role, l.address])).toEqual([
      ['bob', '10.0.0.7'],
      ['alice', '10.0.1.1'],
    ]);
  });

  it('an IPv6 attacker rotating through its /64 costs one line, merged within one batch', () => {
    const t = new Tally(policy({ after: 1 }));
    const d = t.decide(
      times(500, (i) => fail('alice', `2001:db8:1:2:${i.toString(16)}::1`, T0 + i)),
      [],
      T0 + 600,
    );
    expect(d.lock.map((l) => [l.address, l.count, l.replaces])).toEqual([['2001:db8:1:2::/64', 2, undefined]]);
    expect(d.knocks.get('new:address\0alice\x002001:db8:1:2::/64')?.count).toBe(498);
  });

  it('never merges into a prefix holding an excluded address, nor the engine’s own address for its role', () => {
    const t = new Tally(policy({ after: 1, excludeAddresses: ['10.0.0.200'] }));
    const d = t.decide([fail('alice', '10.0.0.5'), fail('alice', '10.0.0.6')], [], T0, { roles: new Set(), addresses: new Set() });
    expect(d.lock.map((l) => l.address)).toEqual(['10.0.0.5', '10.0.0.6']);
    const u = new Tally(policy({ after: 1 }));
    const e = u.decide([fail('alice', '10.0.0.5'), fail('alice', '10.0.0.6')], [], T0, {
      roles: new Set(['guard']),
      addresses: new Set(['10.0.0.9']),
    });
    // another role's prefix over the engine's address does not refuse the engine: merged
    expect(e.lock.map((l) => l.address)).toEqual(['10.0.0.0/24']);
    const g = u.decide([fail('guard', '10.0.0.5'), fail('guard', '10.0.0.6')], [], T0, {
      roles: new Set(['guard']),
      addresses: new Set(['10.0.0.9']),
    });
    expect(g.lock.map((l) => l.address)).toEqual(['10.0.0.5', '10.0.0.6']);
  });

  it(`at the cap a role still failing from a new place is locked from every address, its others merged into it, loudly`, () => {
    const t = new Tally(policy({ after: 1 }));
    const full = held(MAX_ACTIVE_LOCKOUTS, (i) => ({ role: `r${i % 100}`, address: `10.${i & 255}.${i >> 8}.1` }));
    const d = t.decide([fail('r7', '10.200.0.1'), fail('alice', '10.201.0.1'), fail('r7', '10.202.0.1')], full, T0);
    // r7's ten lockouts merged into its two lines free room: alice's is one address again
    expect(d.lock.map((l) => [l.role, l.address])).toEqual([
      ['r7', '0.0.0.0/0'],
      ['r7', '::/0'],
      ['alice', '10.201.0.1'],
    ]);
    expect(d.lock[1]!.replaces).toEqual(full.filter((l) => l.role === 'r7').map((l) => l.id));
    expect(d.lock[0]!.reason).toMatch(/^role-wide lockout: the cap of 1000 lockouts in force \(MAX_ACTIVE_LOCKOUTS\) is reached/);
    expect(d.knocks.get('new:address\0r7\x000.0.0.0/0')?.count).toBe(1);
    expect(d.capped.filter((c) => c.startsWith('warning: "r7" is locked from every address until'))).toHaveLength(1);
    // an IPv6 failure of the role knocks on its IPv6 line
    const wide = d.lock.slice(0, 2).map(stored);
    expect(t.decide([fail('r7', '2001:db8::1')], [...full, ...wide], T0 + 1).knocks.get(wide[1]!.id)?.count).toBe(1);
  });

  it('at the cap the engine’s own role is locked from the new address alone, not from every address (its own among them)', () => {
    const t = new Tally(policy({ after: 1 }));
    const full = held(MAX_ACTIVE_LOCKOUTS, (i) => ({ role: `r${i % 100}`, address: `10.${i & 255}.${i >> 8}.1` }));
    const d = t.decide([fail('guard', '10.200.0.1')], full, T0, { roles: new Set(['guard']), addresses: new Set(['10.9.9.9']) });
    expect(d.lock.map((l) => [l.role, l.address])).toEqual([['guard', '10.200.0.1']]);
    expect(d.capped.join('\n')).toMatch(/"guard" is not locked from every address .*would refuse the engine's own connection/);
  });

  it(`a role with ${MAX_LOCKOUTS_PER_ROLE} separate lockouts is locked from every address at the next; excluded roles never`, () => {
    const t = new Tally(policy({ after: 1, excludeRoles: ['root'] }));
    const mine = held(MAX_LOCKOUTS_PER_ROLE, (i) => ({ role: 'alice', address: `10.${i}.0.1` }));
    const roots = held(MAX_LOCKOUTS_PER_ROLE, (i) => ({ role: 'root', address: `10.${i}.0.1` }));
    const d = t.decide([fail('alice', '10.99.0.1'), fail('root', '10.99.0.1')], [...mine, ...roots], T0);
    expect(d.lock.map((l) => [l.role, l.address])).toEqual([
      ['alice', '0.0.0.0/0'],
      ['alice', '::/0'],
    ]);
    expect(d.lock[0]!.reason).toContain(`"alice" has ${MAX_LOCKOUTS_PER_ROLE} separate lockouts already`);
    // one fewer: an address lockout as before
    expect(t.decide([fail('alice', '10.98.0.1')], mine.slice(1), T0).lock.map((l) => l.address)).toEqual(['10.98.0.1']);
  });

  it('at the cap a ban is widened to its prefix (its bans there merged), never over the engine’s own address', () => {
    const t = new Tally(policy({ after: null, banAddressAfter: 1 }));
    const full = held(MAX_ACTIVE_LOCKOUTS, (i) => ({ kind: 'address_ban', role: null, address: `10.${i & 255}.${i >> 8}.1` }));
    const d = t.decide([fail('x', '10.1.0.9', T0, 'role_missing')], full, T0);
    expect(d.lock.map((l) => [l.kind, l.address, l.count])).toEqual([['address_ban', '10.1.0.0/24', 2]]);
    expect(d.lock[0]!.replaces).toEqual([full[1]!.id]);
    expect(d.capped.join('\n')).toMatch(/warning: every role from 10\.1\.0\.0\/24 is refused/);
    const e = t.decide([fail('x', '10.1.0.9', T0, 'role_missing')], full, T0, { roles: new Set(), addresses: new Set(['10.1.0.50']) });
    expect(e.lock).toEqual([]);
    expect(e.capped.join('\n')).toMatch(/not widened to 10\.1\.0\.0\/24/);
  });

  it(`makes nothing past ${MAX_ACTIVE_LOCKOUTS + MAX_WIDE_LOCKOUTS} in force, and says so`, () => {
    const t = new Tally(policy({ after: 1 }));
    const full = held(MAX_ACTIVE_LOCKOUTS + MAX_WIDE_LOCKOUTS, (i) => ({ role: `r${i}`, address: `10.${i & 255}.${i >> 8}.1` }));
    const d = t.decide([fail('alice', '10.2.0.1')], full, T0);
    expect(d.lock).toEqual([]);
    expect(d.capped.join('\n')).toMatch(/3000 lockouts in force already/);
  });
});
