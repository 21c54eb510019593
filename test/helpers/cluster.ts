// Real PostgreSQL servers for the integration tests, started and stopped by the tests themselves.
import pg from 'pg';
import { hiddenBackendsSql } from '../../src/checks/hidden-backends.js';
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

/** Start the cluster and give it the conveniences: admin client, sql, connectAs, dsn, destroyAll. */
async function started(cluster: EmbeddedCluster): Promise<TestCluster> {
  const c = cluster as TestCluster;
  await c.start();
  const clients: pg.Client[] = [];
  const open = async (cfg: pg.ClientConfig) => {
    const client = new pg.Client({ host: '127.0.0.1', port: c.port, ...cfg });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  };
  c.admin = await open({ user: 'postgres', password: c.password, database: 'postgres' });
  c.sql = async (text, values) => (await c.admin.query(text, values)).rows as never;
  c.connectAs = (user, password, database = 'postgres', extra = {}) => open({ user, password, database, ...extra });
  c.dsn = (database = 'postgres') => c.url('postgres', c.password, database);
  c.destroyAll = async () => {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await c.destroy();
  };
  return c;
}

export async function startCluster(major: number, settings: Record<string, string | number> = {}): Promise<TestCluster> {
  return started(new EmbeddedCluster({ major, password: 'super-secret-pw', settings }));
}

/** pg_hba.conf for tests that log roles in by password over TCP (and the harness over the socket). */
export const PASSWORD_HBA = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n';

/** startCluster, with `hba` in force. */
export async function startClusterWithHba(major: number, hba = PASSWORD_HBA): Promise<TestCluster> {
  const cl = await startCluster(major);
  await cl.writeDataFile('pg_hba.conf', hba);
  await cl.sql('SELECT pg_reload_conf()');
  return cl;
}

/** pg_conf_load_time() as a new session sees it (a session sees its own reload only once it has processed it). */
export async function confLoadTime(cl: TestCluster): Promise<number> {
  const c = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'postgres', password: cl.password, database: 'postgres' });
  await c.connect();
  try {
    return Number((await c.query<{ t: number }>(`SELECT extract(epoch FROM pg_conf_load_time())::float8 AS t`)).rows[0]!.t);
  } finally {
    await c.end();
  }
}

/** pg_reload_conf(), then wait until new sessions have the configuration; returns the new load time. */
export async function reloadAndWait(cl: TestCluster, timeoutMs = 20_000): Promise<number> {
  const before = await confLoadTime(cl);
  await cl.sql('SELECT pg_reload_conf()');
  for (const end = Date.now() + timeoutMs; Date.now() < end;) {
    const t = await confLoadTime(cl);
    if (t > before) return t;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`pg_reload_conf() was not observed within ${timeoutMs} ms`);
}

/**
 * A real login: 'allow', or the SQLSTATE (else the message) it was refused with. `check` runs in the
 * session before it ends; what it throws is the outcome (its message).
 */
export async function loginOutcome(cl: TestCluster, cfg: pg.ClientConfig, check?: (c: pg.Client) => Promise<void>): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: cl.port, password: 'unused', database: 'postgres', ...cfg });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await check?.(c);
    await c.end();
    return 'allow';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
}

/** How many sessions whose query is LIKE `pattern` wait on a lock now. */
export async function lockWaiters(cl: TestCluster, pattern: string): Promise<number> {
  const rows = await cl.sql<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
    [pattern],
  );
  return rows[0]!.n;
}

/**
 * A hot standby streaming from `primary`, read-only, with the same superuser password: built with
 * pg_basebackup -R -X stream where Debian's (15) can back up this major (14, 15), else with the
 * low-level backup API and a replication slot (16..18). Destroy it before or after the primary: each destroyAll() is independent.
 */
export async function startStandby(primary: TestCluster, settings: Record<string, string | number> = {}): Promise<TestCluster> {
  return started(new EmbeddedCluster({ standbyOf: primary, settings }));
}

/** An LSN ("16/B374D848") as a byte position. */
export function lsnBytes(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/**
 * Wait until `standby` has replayed everything committed on `primary` so far; returns the LSN.
 *
 * The embedded clusters run with synchronous_commit=off: COMMIT returns once its record is
 * inserted into the WAL buffers, before it is written, so pg_current_wal_lsn() (the write
 * position) is still behind the commit record; the walwriter writes it within wal_writer_delay
 * and only then is it streamed. The position to wait for is pg_current_wal_insert_lsn(). At a
 * page boundary the insert position points past the page header, while replay reports the end of
 * the last record, i.e. the page start: the target is moved back over the header then.
 */
export async function waitForReplay(primary: TestCluster, standby: TestCluster, timeoutMs = 30_000): Promise<string> {
  const [row] = await primary.sql<{ lsn: string; block: string; segment: string }>(
    `SELECT pg_current_wal_insert_lsn()::text AS lsn, current_setting('wal_block_size') AS block,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment`,
  );
  let target = lsnBytes(row!.lsn);
  const block = BigInt(row!.block);
  const segment = BigInt(row!.segment);
  // XLogPageHeaderData is 24 bytes, the long header at a segment start 40
  if (target % segment === 40n) target -= 40n;
  else if (target % block === 24n) target -= 24n;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await standby.sql<{ replayed: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS replayed');
    if (r?.replayed && lsnBytes(r.replayed) >= target) return r.replayed;
    if (Date.now() > end) throw new Error(`standby replayed ${r?.replayed ?? 'nothing'} after ${timeoutMs} ms, waiting for ${row!.lsn}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A login of `user` held in the post-authentication window for `delayS` seconds (post_auth_delay):
 * the backend has authenticated, but pg_stat_activity shows no role for it yet. Resolves once it
 * shows as hidden, with its pid: one that was not hidden before, so a backend another test has just
 * ended (and that has not exited yet) is never taken for it. The client never finishes connecting
 * while parked: end it, ignoring errors, when done.
 */
export async function parkLogin(cl: TestCluster, user: string, password: string, delayS = 30): Promise<{ client: pg.Client; pid: number }> {
  const hidden = async () => (await cl.sql<{ pid: number }>(hiddenBackendsSql(cl.major))).map((r) => r.pid);
  const before = new Set(await hidden());
  const client = new pg.Client({
    host: '127.0.0.1',
    port: cl.port,
    user,
    password,
    database: 'postgres',
    options: `-c post_auth_delay=${delayS}`,
  });
  client.on('error', () => undefined);
  void client.connect().catch(() => undefined);
  for (const end = Date.now() + 15_000; ;) {
    const pid = (await hidden()).find((p) => !before.has(p));
    if (pid !== undefined) return { client, pid };
    if (Date.now() > end) throw new Error(`a login of ${user} did not show as a hidden backend within 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a client can still run a query (false once its session was terminated or refused). */
export async function canQuery(c: pg.Client): Promise<boolean> {
  try {
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}
