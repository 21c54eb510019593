// Reading several nodes at once: connect to each, run the same function, keep going when one fails.
// inspect, verify and sessions run through runOnNodes; cutoff connects with connectAll (it plans first).
import { describeError } from '../errors.js';
import { stampNode } from '../record/node-stamp.js';
import { mapBounded } from '../util/pool.js';
import { connect, type Client, type SessionSettings } from './connect.js';
import type { ConnParams } from './conninfo.js';

export interface NodeTarget {
  name: string;
  params: ConnParams;
  /** The fleet file's cluster name (null: given with --target or the connection options). */
  cluster: string | null;
}

export interface NodeResult<R> {
  node: string;
  cluster: string | null;
  /** As the node says (pg_is_in_recovery()); null when it was not reached. */
  role: 'primary' | 'standby' | null;
  /** unreachable: no connection; failed: connected, then the work failed; absent: the role is not on this cluster. */
  status: 'ok' | 'absent' | 'unreachable' | 'failed';
  /** One line: message, SQLSTATE, hint. */
  error: string | null;
  /** fn's result, every object in its arrays stamped with the node's name. */
  value: R | null;
}

export const NODE_ROLE_SQL = 'SELECT pg_is_in_recovery() AS standby';

/** primary or standby, as the node itself says (pg_is_in_recovery()). */
export async function nodeRole(client: Client): Promise<'primary' | 'standby'> {
  const { rows } = await client.query<{ standby: boolean }>(NODE_ROLE_SQL);
  return rows[0]?.standby ? 'standby' : 'primary';
}

/** Connect to every node at once; an unreachable node is an Error in its slot, not an exception. */
export async function connectAll(targets: NodeTarget[], session: SessionSettings = {}): Promise<(Client | Error)[]> {
  return Promise.all(
    targets.map((t) =>
      connect(t.params, t.params.database, session).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    ),
  );
}

/**
 * Run fn on every node, at most `concurrency` at once, each a section of one document: the node's
 * name and role beside fn's result (stamped with the node); each connection is closed afterwards.
 */
export async function runOnNodes<R>(
  targets: NodeTarget[],
  concurrency: number,
  fn: (target: NodeTarget, client: Client) => Promise<R>,
  onDone?: (result: NodeResult<R>) => void,
): Promise<NodeResult<R>[]> {
  return mapBounded(targets, concurrency, async (t) => {
    const result = await runOne(t, fn);
    onDone?.(result);
    return result;
  });
}

async function runOne<R>(t: NodeTarget, fn: (target: NodeTarget, client: Client) => Promise<R>): Promise<NodeResult<R>> {
  const base = { node: t.name, cluster: t.cluster };
  let client: Client;
  try {
    client = await connect(t.params);
  } catch (err) {
    return { ...base, role: null, status: 'unreachable', error: describeError(err), value: null };
  }
  let role: NodeResult<R>['role'] = null;
  try {
    role = await nodeRole(client);
    return { ...base, role, status: 'ok', error: null, value: stampNode(await fn(t, client), t.name) };
  } catch (err) {
    // a fleet's clusters need not all have the role: nothing to report there, and not a failure
    if (err instanceof RoleAbsent) return { ...base, role, status: 'absent', error: err.message, value: null };
    return { ...base, role, status: 'failed', error: describeError(err), value: null };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Text mode's one line of progress for a node that is done. */
export function nodeDoneLine(r: Pick<NodeResult<unknown>, 'node' | 'status' | 'error'>, what?: string): string {
  return `pgrevoke: ${r.node}: ${r.status === 'ok' ? (what ?? 'done') : r.status}${r.status !== 'ok' && r.error ? `, ${r.error}` : ''}`;
}

/** Thrown by a node's work when the role does not exist there. */
export class RoleAbsent extends Error {}

/** How one node came out, as far as the shared exit-code rule cares. */
export type NodeVerdict = 'done' | 'absent' | 'failed' | 'partial';

/**
 * The exit-code rule every command shares over several nodes: 2 when the role is on no node or no
 * node answered at all; 3 when some node failed (or was only partly done) while others answered;
 * else null, and the command's own verdict decides 0 or 1. An `absent` node answered.
 */
export function spreadExitCode(verdicts: NodeVerdict[]): 2 | 3 | null {
  if (verdicts.every((v) => v === 'absent') || verdicts.every((v) => v === 'failed')) return 2;
  return verdicts.some((v) => v === 'failed' || v === 'partial') ? 3 : null;
}

export function nodesExitCode(results: Pick<NodeResult<unknown>, 'status'>[]): 2 | 3 | null {
  return spreadExitCode(
    results.map((r) => (r.status === 'unreachable' || r.status === 'failed' ? 'failed' : r.status === 'absent' ? 'absent' : 'done')),
  );
}
