// Real PostgreSQL servers for the integration tests, started and stopped by the tests themselves.
import pg from 'pg';
import { EmbeddedCluster } from '../../src/embedded/cluster.js';

/** Majors under test: `npm test` runs 14 and 18; `npm run test:matrix` sets 14..18. */
export const MAJORS: number[] = (process.env.PGREVOKE_TEST_MAJORS ?? '14,18')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n > 0);

export interface TestCluster extends EmbeddedCluster {
  /** A superuser client (closed by destroy()). */
  admin: pg.Client;
  /** Run SQL as superuser. */
  sql<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Open a client as some role (password auth over TCP). Closed by destroy(). */
  connectAs(user: string, password: string, database?: string, extra?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** Superuser DSN with password (for --dsn). */
  dsn(database?: string): string;
  destroyAll(): Promise<void>;
}

export async function startCluster(major: number, settings: Record<string, string | number> = {}): Promise<TestCluster> {
  const cluster = new EmbeddedCluster({ major, password: 'super-secret-pw', settings }) as TestCluster;
  await cluster.start();
  const clients: pg.Client[] = [];
  const open = async (cfg: pg.ClientConfig) => {
    const c = new pg.Client({ host: '127.0.0.1', port: cluster.port, ...cfg });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  cluster.admin = await open({ user: 'postgres', password: cluster.password, database: 'postgres' });
  cluster.sql = async (text, values) => (await cluster.admin.query(text, values)).rows as never;
  cluster.connectAs = (user, password, database = 'postgres', extra = {}) => open({ user, password, database, ...extra });
  cluster.dsn = (database = 'postgres') => cluster.url('postgres', cluster.password, database);
  cluster.destroyAll = async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await cluster.destroy();
  };
  return cluster;
}
