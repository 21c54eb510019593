// What every database command does first: resolve parameters psql-style and connect once.
import os from 'node:os';
import type { GlobalOptions } from '../context.js';
import { connect, type Client } from '../pg/connect.js';
import { resolveConnParams, type ConnParams, type TargetNode } from '../pg/conninfo.js';

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
