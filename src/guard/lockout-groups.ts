// How guard's lockout groups its nodes (issue 16): one lockout engine per fleet cluster, so that a
// lockout made from failures on any node of a cluster holds on all of its nodes and on no other
// cluster's; the --target nodes (cluster null) are one group together. Apart from lockout-hook.ts
// so that the command's start line can say it without loading the lockout.
import type { GuardNode } from './types.js';

/** The nodes by cluster, in the order given; --target nodes (cluster null) are one group. */
export function lockoutGroups(nodes: readonly GuardNode[]): Map<string | null, GuardNode[]> {
  const groups = new Map<string | null, GuardNode[]>();
  for (const n of nodes) groups.set(n.cluster ?? null, [...(groups.get(n.cluster ?? null) ?? []), n]);
  return groups;
}

/** `one cluster (2 nodes)`, `one cluster: cluster a (2 nodes)`, `2 clusters, each its own: cluster a (2 nodes), the --target nodes (1 node)`. */
export function describeGroups(nodes: readonly GuardNode[]): string {
  const groups = lockoutGroups(nodes);
  const count = (ns: readonly GuardNode[]) => `${ns.length} node${ns.length === 1 ? '' : 's'}`;
  const [only] = groups;
  if (groups.size === 1 && only![0] === null) return `one cluster (${count(only![1])})`;
  const named = [...groups].map(([c, ns]) => `${c === null ? 'the --target nodes' : `cluster ${c}`} (${count(ns)})`);
  return groups.size === 1 ? `one cluster: ${named[0]}` : `${groups.size} clusters, each its own: ${named.join(', ')}`;
}
