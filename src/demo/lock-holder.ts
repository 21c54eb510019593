// A simulated attacker that stalls instead of querying: sessions of the role that each open a
// transaction, run one statement that takes a lock pgrevoke needs (the role changing its own
// password row-locks its pg_authid row; a superuser can LOCK TABLE pg_authid) and keep it open.
// Cut, they reconnect and do it again. Used by the integration tests and the lock benchmark.
import pg from 'pg';

export interface LockHolderOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The statement run inside the open transaction. */
  sql: string;
  sessions?: number;
}

export class LockHolder {
  /** How many times a session has taken the lock. */
  holds = 0;
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly clients = new Set<pg.Client>();

  constructor(private readonly opts: LockHolderOptions) {
    for (let i = 0; i < (opts.sessions ?? 1); i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const { host, port, user, password } = this.opts;
      const c = new pg.Client({ host, port, user, password, database: 'postgres', connectionTimeoutMillis: 5000 });
      let gone!: () => void;
      const ended = new Promise<void>((r) => (gone = r));
      c.on('error', () => gone());
      c.on('end', () => gone());
      try {
        await c.connect();
        this.clients.add(c);
        await c.query('BEGIN');
        await c.query(this.opts.sql);
        this.holds++;
        await ended; // the transaction stays open until the session is cut
      } catch {
        await new Promise((r) => setTimeout(r, 2));
      } finally {
        this.clients.delete(c);
        void c.end().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const c of this.clients) void c.end().catch(() => undefined);
    await Promise.allSettled(this.loops);
  }
}
