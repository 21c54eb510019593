// A simulated attacker: N sessions running a query every few ms, reconnecting whenever cut.
// Used by `pgrevoke demo`, the integration tests and the time-to-containment benchmark.
import pg from 'pg';

export interface AttackOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  sessions: number;
  intervalMs: number;
  /** The query each session runs (default: a read of one row). */
  query?: string;
  /** Extra startup options, e.g. '-c post_auth_delay=5'. */
  options?: string;
  /**
   * A column of the query's first row holding the server's clock_timestamp() as epoch milliseconds:
   * when set, each success is also stamped with the time the query ran on the server, which a
   * CPU-starved attacker process cannot delay (its own stamp is taken when it next runs).
   */
  serverStampColumn?: string;
}

export interface AttackStats {
  successes: number;
  /** performance.now() of the last successful query, or null. */
  lastSuccessAt: number | null;
  /** With serverStampColumn: the latest server time (epoch ms) at which a successful query ran, or null. */
  lastServerAt: number | null;
  connects: number;
  refusals: number;
  /** SQLSTATEs (or error codes) of refused logins, counted. */
  refusalCodes: Record<string, number>;
}

export class Attacker {
  readonly stats: AttackStats = { successes: 0, lastSuccessAt: null, lastServerAt: null, connects: 0, refusals: 0, refusalCodes: {} };
  private running = false;
  private loops: Promise<void>[] = [];
  private clients = new Set<pg.Client>();

  constructor(private readonly opts: AttackOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.opts.sessions; i++) this.loops.push(this.loop(i));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  private async loop(i: number): Promise<void> {
    // stagger the first connects a little so that 300 sessions do not all hit accept() at once
    await this.sleep((i % 20) * 5);
    while (this.running) {
      const client = new pg.Client({
        host: this.opts.host,
        port: this.opts.port,
        user: this.opts.user,
        password: this.opts.password,
        database: this.opts.database ?? 'postgres',
        options: this.opts.options,
        connectionTimeoutMillis: 5000,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        this.stats.connects++;
        this.clients.add(client);
        while (this.running) {
          const res = await client.query(this.opts.query ?? 'SELECT 1');
          this.stats.successes++;
          this.stats.lastSuccessAt = performance.now();
          this.stamp(res.rows[0] as Record<string, unknown> | undefined);
          await this.sleep(this.opts.intervalMs);
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'other';
        if (!this.clients.has(client)) {
          this.stats.refusals++;
          this.stats.refusalCodes[code] = (this.stats.refusalCodes[code] ?? 0) + 1;
        }
        // reconnect at once, as a real attacker's script would; a tiny pause keeps the loop from spinning hot
        await this.sleep(2);
      } finally {
        this.clients.delete(client);
        void client.end().catch(() => undefined);
      }
    }
  }

  private stamp(row: Record<string, unknown> | undefined): void {
    const col = this.opts.serverStampColumn;
    if (!col) return;
    const at = Number(row?.[col]);
    // a query without the column leaves lastServerAt null, which the caller checks
    if (Number.isFinite(at)) this.stats.lastServerAt = Math.max(this.stats.lastServerAt ?? at, at);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const c of this.clients) void c.end().catch(() => undefined);
    await Promise.allSettled(this.loops);
  }
}
