// What every database command does first: resolve parameters psql-style and connect once.
import os from 'node:os';
import type { GlobalOptions } from '../cli.js';
import { connect, type Client } from '../pg/connect.js';
import { resolveConnParams, type ConnParams, type TargetNode } from '../pg/conninfo.js';
import { targetsFrom } from '../fleet/targets.js';

export type { TargetNode };

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
 * none (resolveTargets in src/fleet/targets.ts, which also reads --fleet). `-U`/`-d`/`--connect-timeout`
 * apply to every target; --dsn/--host/--port do not combine with --target. `appName` replaces the
 * default application_name, so the server shows who is connected.
 */
export function targetNodes(targets: string[] | undefined, g: GlobalOptions, appName: string): TargetNode[] {
  return targetsFrom({ target: targets }, g, appName, null).nodes.map(({ name, params }) => ({ name, params }));
}
