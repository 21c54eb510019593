// The lockout's own connection to one node (issue 16): the log reads and the engine's statements
// (a reload, an ALTER ROLE, ending sessions) never share the tick's connection, so a statement
// stalled on a lock or a slow read cannot queue the next tick behind it. Every statement carries a
// query_timeout; one that times out, or any connection error, closes the connection (pg would keep
// the next statement queued behind the stalled one): the next use opens a fresh one.
import { connect as pgConnect } from '../pg/connect.js';
import type { ConnParams } from '../pg/conninfo.js';
import { LOCKOUT_SETUP, type LockoutSetupRow } from './sql.js';
import type { GuardClient } from './types.js';

/** What the engine and the log source call: a query that always carries the connection's query_timeout. */
export interface TimedClient {
  query<R extends object>(config: { text: string; values?: unknown[] }): Promise<{ rows: R[] }>;
}

/** One open connection: its timed client (the same object for the connection's life: the engine caches facts by it) and what setup read. */
export interface OpenConn {
  client: TimedClient;
  setup: LockoutSetupRow;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;
/** How long closing a connection may take before it is left to the socket's own end. */
const CLOSE_WAIT_MS = 1000;

export class LockoutConn {
  private raw: GuardClient | null = null;
  private open: OpenConn | null = null;
  private opening: Promise<OpenConn> | null = null;
  private pid: number | null = null;

  constructor(
    private readonly params: ConnParams,
    private readonly queryTimeoutMs: number,
    private readonly connect: (p: ConnParams) => Promise<GuardClient> = (p) => pgConnect(p) as Promise<GuardClient>,
    /** The node's own backends (lockout-own.ts): this connection's pid is in it while it is open. */
    private readonly own: Set<number> = new Set(),
  ) {}

  /** The connection now, or null while none is open (the engine skips the node until the next pass opens one). */
  current(): TimedClient | null {
    return this.open?.client ?? null;
  }

  /** The open connection, opened (and set up) if there is none. */
  get(): Promise<OpenConn> {
    if (this.open) return Promise.resolve(this.open);
    this.opening ??= this.connectNow().finally(() => (this.opening = null));
    return this.opening;
  }

  private async connectNow(): Promise<OpenConn> {
    const raw = await this.connect(this.params);
    raw.on?.('error', () => void this.close(raw));
    this.raw = raw;
    const client: TimedClient = {
      query: async <R extends object>(c: { text: string; values?: unknown[] }) => {
        try {
          return await raw.query<R>({ ...c, query_timeout: this.queryTimeoutMs });
        } catch (err) {
          // a client-side timeout leaves the statement running ahead of the next, a socket error leaves nothing: start
          // afresh; a server's error (a SQLSTATE) leaves the connection fine
          if (!SQLSTATE.test(String((err as { code?: unknown }).code))) await this.close(raw);
          throw err;
        }
      },
    };
    try {
      const setup = (await client.query<LockoutSetupRow>({ text: LOCKOUT_SETUP })).rows[0]!;
      this.open = { client, setup };
      this.pid = setup.pid;
      this.own.add(setup.pid);
      return this.open;
    } catch (err) {
      await this.close(raw);
      throw err;
    }
  }

  /** Close it (`only`: if it is still this one). */
  async close(only?: GuardClient): Promise<void> {
    const raw = this.raw;
    if (!raw || (only && raw !== only)) return;
    this.raw = null;
    this.open = null;
    if (this.pid !== null) this.own.delete(this.pid);
    this.pid = null;
    // a connection whose statement hangs may not end cleanly either: never wait on it long
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      raw.end().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref())),
    ]);
    clearTimeout(timer);
  }
}
