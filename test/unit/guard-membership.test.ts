// guard --on-membership-revoked, the pure part: who may SET ROLE to whom (transitively, SET links
// only), what a member lost between two snapshots of pg_auth_members, and the words for it.
import { describe, expect, it } from 'vitest';
import { snapshotOf } from '../../src/guard/membership-holdover.js';
import { membershipKill, membershipProbe } from '../../src/guard/membership-sql.js';
import {
  byMember,
  describeLost,
  lostMemberships,
  setClosure,
  type MembershipEdge,
  type MembershipSnapshot,
} from '../../src/guard/membership.js';

// OIDs: alice 10, bob 11, mid 20, admin 30, ops 31, top 40
const NAMES = new Map([
  ['10', 'alice'],
  ['11', 'bob'],
  ['20', 'mid'],
  ['30', 'admin'],
  ['31', 'ops'],
  ['40', 'top'],
]);
const e = (member: string, role: string, canSet = true): MembershipEdge => ({ member, role, canSet });
let n = 0;
const snap = (edges: MembershipEdge[], names: ReadonlyMap<string, string> = NAMES): MembershipSnapshot => ({
  hash: `h${n++}`,
  count: edges.length,
  edges,
  names,
});
const pairs = (prev: MembershipEdge[], next: MembershipEdge[]) =>
  lostMemberships(snap(prev), snap(next)).map(
    (l) => `${l.memberName}>${l.roleName}${l.via.length ? ` via ${l.via.map((v) => v.name).join('>')}` : ''}`,
  );

/** alice and bob in mid, mid in admin. */
const chain = [e('10', '20'), e('11', '20'), e('20', '30')];

describe('setClosure', () => {
  it('follows SET links transitively, with the shortest way', () => {
    const c = setClosure([e('10', '20'), e('20', '30'), e('30', '40'), e('10', '30')]);
    expect(Object.fromEntries([...c.get('10')!])).toEqual({ '20': [], '30': [], '40': ['30'] });
    expect(Object.fromEntries([...c.get('20')!])).toEqual({ '30': [], '40': ['30'] });
  });

  it('a link without SET (16+ SET FALSE) leads nowhere, and stops the chain', () => {
    const c = setClosure([e('10', '20', false), e('20', '30'), e('11', '20'), e('20', '31', false)]);
    expect(c.get('10')).toBeUndefined();
    expect([...c.get('11')!.keys()]).toEqual(['20', '30']);
  });

  it('a loop (PostgreSQL refuses them) does not hang it', () => {
    const c = setClosure([e('10', '20'), e('20', '10'), e('20', '30')]);
    expect([...c.get('10')!.keys()]).toEqual(['20', '30']);
  });
});

describe('lostMemberships', () => {
  it('nothing when the hash is the same', () => {
    const s = snap(chain);
    expect(lostMemberships(s, { ...snap([]), hash: s.hash })).toEqual([]);
  });

  it('REVOKE admin FROM alice: alice lost admin', () => {
    expect(pairs([e('10', '30'), e('11', '30')], [e('11', '30')])).toEqual(['alice>admin']);
  });

  it('REVOKE admin FROM mid: mid and every member of mid lost admin, through mid', () => {
    expect(pairs(chain, [e('10', '20'), e('11', '20')])).toEqual(['alice>admin via mid', 'bob>admin via mid', 'mid>admin']);
  });

  it('REVOKE mid FROM alice: alice lost mid, and admin through it; bob nothing', () => {
    expect(pairs(chain, [e('11', '20'), e('20', '30')])).toEqual(['alice>mid', 'alice>admin via mid']);
  });

  it('a role still reached another way is not lost', () => {
    expect(pairs([...chain, e('10', '30')], [e('10', '20'), e('11', '20'), e('10', '30')])).toEqual(['bob>admin via mid', 'mid>admin']);
  });

  it('REVOKE SET OPTION (16+): the row stays, the membership is lost; an INHERIT-only grant never counted', () => {
    expect(pairs([e('10', '30')], [e('10', '30', false)])).toEqual(['alice>admin']);
    expect(pairs([e('11', '30', false)], [])).toEqual([]);
  });

  it('two grantors of one membership (16+): revoking one leaves it', () => {
    expect(pairs([e('10', '30'), e('10', '30')], [e('10', '30')])).toEqual([]);
  });

  it('grants only: nothing lost', () => {
    expect(pairs([e('10', '30')], [e('10', '30'), e('11', '30'), e('20', '40')])).toEqual([]);
  });

  it('a role dropped since keeps the name the previous snapshot had; ordered by member, then role, as numbers', () => {
    const prev = snap([e('100', '9'), e('100', '30'), e('9', '30')], new Map([...NAMES, ['9', 'gone'], ['100', 'late']]));
    const next = snap([], new Map());
    const lost = lostMemberships(prev, next);
    expect(lost.map((l) => [l.member, l.role, l.roleName, l.via])).toEqual([
      ['9', '30', 'admin', []],
      ['100', '9', 'gone', []],
      ['100', '30', 'admin', []],
    ]);
  });

  it('groups by member for the one kill statement', () => {
    const lost = lostMemberships(snap(chain), snap([e('11', '20')]));
    expect([...byMember(lost).entries()].map(([m, ls]) => [m, ls.map((l) => l.role)])).toEqual([
      ['10', ['20', '30']],
      ['11', ['30']],
      ['20', ['30']],
    ]);
  });
});

describe('describeLost', () => {
  it('names each role lost, quoted, and the way it was had', () => {
    const lost = lostMemberships(snap(chain), snap([]));
    expect(describeLost(lost.filter((l) => l.member === '10'))).toBe(
      'lost memberships in "mid", "admin" (through "mid"): a session that ran SET ROLE keeps acting as the role until it ends',
    );
  });

  it('an unknown name is an OID, a hostile one stays quoted', () => {
    const names = new Map([
      ['10', 'oid 5'],
      ['30', 'a"b'],
    ]);
    const lost = lostMemberships(snap([e('10', '7'), e('7', '30')], names), snap([], names));
    expect(describeLost(lost.filter((l) => l.member === '10' && l.role === '30'))).toBe(
      'lost membership in "a\\"b" (through oid 7): a session that ran SET ROLE keeps acting as the role until it ends',
    );
  });
});

describe('snapshotOf and the SQL', () => {
  it('reads the probe rows: edges, names, and the hash and count of the one hash row, wherever it comes', () => {
    const s = snapshotOf([
      { hash: null, n: null, member: '10', roleid: '30', can_set: true, member_name: 'alice', role_name: 'admin' },
      { hash: 'abc', n: 2, member: null, roleid: null, can_set: null, member_name: null, role_name: null },
      { hash: null, n: null, member: '11', roleid: '30', can_set: false, member_name: 'bob', role_name: 'admin' },
    ]);
    expect(s).toEqual({
      hash: 'abc',
      count: 2,
      edges: [e('10', '30'), e('11', '30', false)],
      names: new Map([
        ['10', 'alice'],
        ['30', 'admin'],
        ['11', 'bob'],
      ]),
    });
    expect(snapshotOf([{ hash: 'd41d', n: 0, member: null, roleid: null, can_set: null, member_name: null, role_name: null }])).toEqual({
      hash: 'd41d',
      count: 0,
      edges: [],
      names: new Map(),
    });
    expect(() => snapshotOf([])).toThrow(/no hash/);
  });

  it('the probe takes the hash it holds as its one parameter; the kill statement terminates only when not a dry run', () => {
    for (const major of [14, 15, 16, 18]) {
      const q = membershipProbe(major);
      expect(q.text).toContain('IS DISTINCT FROM $1::text');
      expect(q.text).not.toMatch(/\$2/);
      // set_option is a column from 16 on: before, every membership allows SET ROLE
      expect(q.text.includes('set_option')).toBe(major >= 16);
    }
    expect(membershipProbe(15).name).not.toBe(membershipProbe(16).name);
    const real = membershipKill({ dryRun: false });
    const dry = membershipKill({ dryRun: true });
    expect(real.text).toContain('pg_terminate_backend');
    expect(dry.text).not.toContain('pg_terminate_backend');
    expect(real.name).not.toBe(dry.name);
    for (const q of [real, dry]) expect(q.text).toMatch(/ANY\(\$1::int8\[\]\)[\s\S]*ALL\(\$2::text\[\]\)/);
  });
});
