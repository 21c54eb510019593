// Failed logins for the server log tests: real ones, from a chosen 127.0.0.0/8 source address (a
// socket bound with localAddress, handed to pg through its `stream` option), and polling a log
// source until the failures show up.
import net from 'node:net';
import pg from 'pg';
import type { AuthFailure, AuthFailureSource } from '../../src/serverlog/types.js';
import { loginOutcome, type TestCluster } from './cluster.js';

export interface Attempt {
  user: string;
  password?: string;
  database?: string;
  /** The client's source address (TCP to 127.0.0.1); omitted: 127.0.0.1. */
  from?: string;
  /** Over the Unix socket instead of TCP. */
  socket?: boolean;
}

/** A socket that connects from `localAddress`, as pg's `stream` option wants it. */
export function boundSocket(localAddress: string): () => net.Socket {
  return () => {
    const s = new net.Socket();
    const connect = s.connect.bind(s) as (opts: net.TcpSocketConnectOpts) => net.Socket;
    // pg calls stream.connect(port, host): bind the source address there
    (s as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port, host) =>
      connect({ port, host, localAddress });
    return s;
  };
}

/** One login; resolves with 'allow' or the SQLSTATE it was refused with. */
export async function attempt(cl: TestCluster, a: Attempt): Promise<string> {
  const cfg: pg.ClientConfig = {
    host: a.socket ? cl.socketDir : '127.0.0.1',
    user: a.user,
    password: a.password ?? 'wrong-password',
    database: a.database ?? 'postgres',
  };
  if (a.from && !a.socket) cfg.stream = boundSocket(a.from);
  return loginOutcome(cl, cfg);
}

/** Settings for a log readable over SQL: csvlog on 14, jsonlog alone (besides stderr) from 15. */
export function sqlLogSettings(major: number): Record<string, string | number> {
  return {
    logging_collector: 'on',
    log_destination: major >= 15 ? `'stderr,jsonlog'` : `'stderr,csvlog'`,
    log_filename: `'postgresql-%Y-%m-%d_%H%M%S'`,
  };
}

/** Poll `source` until it has given `n` failures (then once more, to see that nothing else comes); all it gave. */
export async function pollFor(source: AuthFailureSource, n: number, timeoutMs = 20_000): Promise<AuthFailure[]> {
  const got: AuthFailure[] = [];
  const end = Date.now() + timeoutMs;
  while (got.length < n) {
    got.push(...(await source.poll()));
    if (got.length >= n) break;
    if (Date.now() > end)
      throw new Error(`${source.describe()}: ${got.length} of ${n} failures after ${timeoutMs} ms: ${JSON.stringify(got)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  got.push(...(await source.poll()), ...(await source.poll()));
  return got;
}

/** The fields a test compares (at, pid and message are checked on their own). */
export function fields(f: AuthFailure): Pick<AuthFailure, 'user' | 'address' | 'database' | 'kind' | 'sqlstate'> {
  return { user: f.user, address: f.address, database: f.database, kind: f.kind, sqlstate: f.sqlstate };
}
