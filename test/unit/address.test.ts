// src/util/address.ts: the one parser and match of addresses and ranges given by the operator
// (sessions --client, guard --exclude-address), both forms of IPv4 one host.
import { describe, expect, it } from 'vitest';
import { canonicalAddress, inRanges, mappedTwin, parseRange, rangeText } from '../../src/util/address.js';
import { parseRanges } from '../../src/lockout/address.js';
import { Tally } from '../../src/lockout/policy.js';
import { testPolicy } from '../helpers/lockout.js';

const r = (t: string) => parseRange(t)!;

describe('addresses and ranges', () => {
  it('parses four-part IPv4, IPv6 without a zone, CIDR up to the family’s length; nothing else', () => {
    expect(['10.1.2.3', '10.0.0.0/8', '::1', 'fd00::/8', ' 2001:DB8::1 '].map((t) => rangeText(r(t)))).toEqual([
      '10.1.2.3/32',
      '10.0.0.0/8',
      '::1/128',
      'fd00::/8',
      '2001:db8::1/128',
    ]);
    for (const bad of ['localhost', '10/8', '127.1', '1.2.3.4/33', '::/129', 'fe80::1%eth0', '10.0.0.0/', '10.0.0.0/08x', ''])
      expect(parseRange(bad)).toBeNull();
    expect(canonicalAddress('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
  });

  it('an IPv4 range and its IPv4-mapped twin match both forms of a client; other IPv6 stays apart', () => {
    expect(rangeText(mappedTwin(r('10.0.0.0/8'))!)).toBe('::ffff:a00:0/104');
    expect(rangeText(mappedTwin(r('::ffff:10.0.0.0/104'))!)).toBe('10.0.0.0/8');
    expect(mappedTwin(r('fd00::/8'))).toBeNull();
    expect(mappedTwin(r('::ffff:0:0/95'))).toBeNull();
    const v4 = [r('10.0.0.0/8')];
    const mapped = [r('::ffff:10.0.0.0/104')];
    for (const ranges of [v4, mapped]) {
      expect(inRanges('10.1.2.3', ranges)).toBe(true);
      expect(inRanges('::ffff:10.1.2.3', ranges)).toBe(true);
      expect(inRanges('11.0.0.1', ranges)).toBe(false);
      expect(inRanges('::a01:203', ranges)).toBe(false);
      expect(inRanges('not-an-address', ranges)).toBe(false);
    }
  });

  it('guard --exclude-address spares both forms of an excluded IPv4 client', () => {
    const t = new Tally(testPolicy({ excludeAddresses: ['::ffff:10.9.0.0/112'] }));
    const f = (address: string) => ({
      at: '2026-03-01T12:00:00.000Z',
      user: 'alice',
      database: 'postgres',
      address,
      sqlstate: '28P01' as const,
      kind: 'password' as const,
      message: 'm',
      hbaLine: null,
      pid: 1,
    });
    const d = t.decide(
      [1, 2, 3].flatMap(() => [f('10.9.0.5'), f('::ffff:10.9.0.6'), f('10.8.0.5')]),
      [],
      Date.parse('2026-03-01T12:00:00Z'),
    );
    expect(d.lock.map((l) => l.address)).toEqual(['10.8.0.5']);
    expect(() => parseRanges(['10.0.0.0/33'])).toThrow(/invalid --exclude-address/);
  });
});
