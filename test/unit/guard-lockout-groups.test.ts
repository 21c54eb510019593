// How guard's lockout groups its nodes (src/guard/lockout-groups.ts): one engine per fleet cluster,
// the --target nodes one group together, and the start line's words for it.
import { describe, expect, it } from 'vitest';
import { describeGroups, lockoutGroups } from '../../src/guard/lockout-groups.js';
import type { GuardNode } from '../../src/guard/types.js';

const node = (name: string, cluster?: string | null): GuardNode => ({
  name,
  params: { host: name, port: 5432 } as GuardNode['params'],
  cluster,
});

describe('guard lockout groups', () => {
  it('one group per fleet cluster, in order; the --target nodes together', () => {
    const nodes = [node('t1', null), node('a1', 'a'), node('b1', 'b'), node('a2', 'a'), node('t2')];
    const groups = lockoutGroups(nodes);
    expect([...groups].map(([c, ns]) => [c, ns.map((n) => n.name)])).toEqual([
      [null, ['t1', 't2']],
      ['a', ['a1', 'a2']],
      ['b', ['b1']],
    ]);
    expect(describeGroups(nodes)).toBe('3 clusters, each its own: the --target nodes (2 nodes), cluster a (2 nodes), cluster b (1 node)');
  });

  it('one group', () => {
    expect(describeGroups([node('t1')])).toBe('one cluster (1 node)');
    expect(describeGroups([node('t1'), node('t2')])).toBe('one cluster (2 nodes)');
    expect(describeGroups([node('a1', 'a'), node('a2', 'a')])).toBe('one cluster: cluster a (2 nodes)');
  });
});
