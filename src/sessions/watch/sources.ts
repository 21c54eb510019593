// Where the live view's rows come from and where K/C go: one node over one connection (opened anew
// after a failed refresh, so that a restarted server comes back into view), or several nodes, each
// frame connecting anew as `sessions` over a fleet does (a node that goes down or comes back shows so).
import { connect, type Client } from '../../pg/connect.js';
import type { ConnParams } from '../../pg/conninfo.js';
import type { NodeResult, NodeTarget } from '../../pg/nodes.js';
import { collectServer } from '../../pg/server.js';
import type { KillAction } from '../kill.js';
import type { SessionsDoc } from '../list.js';
import { signalRow, type SignalContext, type SignalOutcome } from './signal.js';
import { rowsOf, type Snapshot, type WatchRow } from './state.js';

export interface WatchSource {
  fetch(): Promise<Snapshot>;
  signal(row: WatchRow, action: KillAction): Promise<SignalOutcome>;
  close(): Promise<void>;
}

export type SignalSettings = Pick<SignalContext, 'auditLog' | 'who'>;

/** One node: `first` is the connection the command opened (its failure was the command's error). */
export function nodeSource(
  first: Client,
  o: { params: ConnParams; node: string; major: number; list: (client: Client) => Promise<SessionsDoc> },
  x: SignalSettings,
): WatchSource {
  let client: Client | null = first;
  const drop = (c: Client) => {
    if (client === c) client = null;
    void c.end().catch(() => undefined);
  };
  const using = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = (client ??= await connect(o.params));
    try {
      return await fn(c);
    } catch (err) {
      drop(c);
      throw err;
    }
  };
  return {
    fetch: () => using(async (c) => ({ at: new Date().toISOString(), rows: rowsOf(o.node, await o.list(c)), down: [] })),
    signal: (row, action) => using((c) => signalRow(row, action, { client: c, major: o.major, qualify: false, ...x })),
    close: async () => {
      if (client && client !== first) await client.end().catch(() => undefined);
    },
  };
}

/** Several nodes: `collect` reads every node once (runOnNodes); a signal connects to the row's node. */
export function fleetSource(
  targets: readonly NodeTarget[],
  collect: () => Promise<NodeResult<SessionsDoc>[]>,
  x: SignalSettings,
): WatchSource {
  return {
    fetch: async () => {
      const nodes = await collect();
      return {
        at: new Date().toISOString(),
        rows: nodes.flatMap((n) => (n.value ? rowsOf(n.node, n.value) : [])),
        down: nodes.filter((n) => !n.value).map((n) => ({ node: n.node, error: `${n.status}: ${n.error ?? ''}` })),
      };
    },
    signal: async (row, action) => {
      const t = targets.find((n) => n.name === row.node);
      if (!t) return { message: `error: unknown node ${row.node}`, auditFailed: false };
      const client = await connect(t.params);
      try {
        const { major } = await collectServer(client);
        return await signalRow(row, action, { client, major, qualify: true, ...x });
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    close: async () => undefined,
  };
}
