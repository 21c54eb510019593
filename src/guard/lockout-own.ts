// The backends of guard's own lockout connections, per node (issue 16): the tick never ends them,
// whatever rule covers guard's role (an --idle-timeout on it would end the lockout's connection,
// idle between log reads, and with it a pg_hba.conf edit's reload). Apart from lockout-conn.ts, and
// importing nothing, so that the tick can ask without loading the lockout.
import type { GuardNode } from './types.js';

const byNode = new WeakMap<GuardNode, Set<number>>();

/** The node's set of own backend pids, which lockout-conn.ts keeps up to date. */
export function ownBackends(node: GuardNode): Set<number> {
  let pids = byNode.get(node);
  if (!pids) byNode.set(node, (pids = new Set()));
  return pids;
}

/** The pids the tick spares on this node besides its own backend (none without a lockout). */
export function sparedPids(node: GuardNode): number[] {
  const pids = byNode.get(node);
  return pids ? [...pids] : [];
}
