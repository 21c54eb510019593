// What every database command does first: resolve parameters psql-style and connect once.
import os from 'node:os';
import type { GlobalOptions } from '../cli.js';
import { connect, type Client } from '../pg/connect.js';
import { nodeLabel, resolveConnParams, type ConnParams, type TargetNode } from '../pg/conninfo.js';

export type { TargetNode };
import { usageError } from '../errors.js';

export interface Session {
  params: ConnParams;
  client: Client;
  close(): Promise<void>;
}

export function paramsFrom(g: GlobalOptions): ConnParams {
  return resolveConnParams({
    dsn: g.dsn,
    host: g.host,
    port: g.port,
    username: g.username,
    dbname: g.dbname,
    connectTimeout: g.connectTimeout,
  });
}

export async function openSession(g: GlobalOptions): Promise<Session> {
  const params = paramsFrom(g);
  const client = await connect(params);
  return { params, client, close: () => client.end().catch(() => undefined) };
}

/** The OS account running pgrevoke, for audit lines. */
export function osUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? String(process.getuid?.() ?? 'unknown');
  }
}

/**
 * The nodes a command acts on: each `--target DSN`, or the usual connection options when there is
 * none. `-U`/`-d`/`--connect-timeout` apply to every target; --dsn/--host/--port do not combine with
 * --target. `appName` replaces the default application_name, so the server shows who is connected.
 */
export function targetNodes(targets: string[] | undefined, g: GlobalOptions, appName: string): TargetNode[] {
  let params: ConnParams[];
  if (!targets?.length) params = [paramsFrom(g)];
  else {
    if (g.dsn || g.host || g.port)
      throw usageError(
        '--target names the nodes: it does not combine with --dsn, --host or --port',
        "put each node's host and port in its --target (user, database and connect timeout flags apply to every target)",
      );
    params = targets.map((dsn) => resolveConnParams({ dsn, username: g.username, dbname: g.dbname, connectTimeout: g.connectTimeout }));
  }
  const nodes = params.map((p) => ({
    name: nodeLabel(p),
    params: p.applicationName === 'pgrevoke' ? { ...p, applicationName: appName } : p,
  }));
  const names = nodes.map((n) => n.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw usageError(`node ${dup} is named twice`, 'each --target must be a different host:port');
  return nodes;
}
