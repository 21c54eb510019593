// A real PgBouncer in front of an embedded cluster, for the integration tests.
//
//   const bouncer = await startPgbouncer(cluster, { databases: [...], users: {...} });
//   bouncer.consoleDsn                 admin console DSN (user pgb_admin, password in it)
//   bouncer.dsnFor(user, password, db) a DSN through the pooler
//   bouncer.connectAs(user, pw, db)    an open pg.Client through the pooler (closed by stop())
//   await bouncer.stop()
//
// PgBouncer refuses to run as root, so it runs as the unprivileged OS user the embedded cluster uses
// (serverUser() in src/embedded/cluster.ts), from a temp dir owned by that user. The auth_file holds
// plain-text passwords (test-only; PgBouncer then answers SCRAM itself and logs in to PostgreSQL with
// SCRAM using the same password). A database entry may force a shared server login (`user=`/`password=`).
// The process is a foreground child; stop() sends SIGTERM, and an exit hook SIGKILLs any left running.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, serverUser, type EmbeddedCluster } from '../../src/embedded/cluster.js';

export const PGBOUNCER_ADMIN = 'pgb_admin';
export const PGBOUNCER_ADMIN_PASSWORD = 'pgb-admin-secret';

export interface PgbouncerDatabase {
  /** Name clients connect to (the [databases] key). PgBouncer 1.18's ini parser takes no quoted keys: [A-Za-z0-9_.-] only. */
  name: string;
  /** The PostgreSQL database behind it (default: same as name). */
  dbname?: string;
  /** Force every client of this entry onto one server login (the shared-user case). */
  forceUser?: { user: string; password: string };
  poolMode?: 'session' | 'transaction' | 'statement';
}

export interface PgbouncerOptions {
  databases: PgbouncerDatabase[];
  /** auth_file entries: user name -> plain-text password. The console admin is added automatically. */
  users: Record<string, string>;
  /** Default pool_mode (default session). */
  poolMode?: 'session' | 'transaction' | 'statement';
  /** Extra [pgbouncer] settings. */
  settings?: Record<string, string | number>;
}

export interface TestPgbouncer {
  host: string;
  port: number;
  dir: string;
  logFile: string;
  /** Admin console DSN, password included (as an operator would pass to --pgbouncer). */
  consoleDsn: string;
  dsnFor(user: string, password: string, database: string): string;
  connectAs(user: string, password: string, database: string): Promise<pg.Client>;
  /** The console, for test assertions (closed by stop()). */
  console(): Promise<pg.Client>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** The PgBouncer that scripts/build-pgbouncer.sh builds (KILL_CLIENT is new in 1.24). */
export const BUILT_PGBOUNCER = path.join(process.env.TMPDIR ?? '/tmp', 'pgrevoke-pgbouncer-1.24.1', 'bin', 'pgbouncer');

function systemPgbouncer(): string | null {
  for (const c of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) if (existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/**
 * The PgBouncer binaries under test: the system's (Debian's 1.18: no KILL_CLIENT, RECONNECT instead)
 * and 1.24.1 built by scripts/build-pgbouncer.sh (KILL_CLIENT). PGREVOKE_PGBOUNCER=path1,path2 picks
 * others. A missing one throws, saying how to get it: the PgBouncer tests fail, never skip.
 */
export function pgbouncerBinaries(): string[] {
  const forced = process.env.PGREVOKE_PGBOUNCER;
  const wanted = forced ? forced.split(',').map((x) => x.trim()) : [systemPgbouncer() ?? '', BUILT_PGBOUNCER];
  const missing = wanted.filter((b) => !b || !existsSync(b));
  if (missing.length)
    throw new Error(
      'the PgBouncer integration tests need a real PgBouncer, two versions: the system one (apt-get install pgbouncer) ' +
        `and 1.24.1 (scripts/build-pgbouncer.sh; .ci/run does both), or PGREVOKE_PGBOUNCER=path[,path]; missing: ${missing.map((m) => m || 'pgbouncer on PATH').join(', ')}`,
    );
  return wanted;
}

/** "PgBouncer 1.18.0" */
export function pgbouncerVersion(bin: string): string {
  return execFileSync(bin, ['-V'], { encoding: 'utf8' }).split('\n')[0]!.trim();
}

/** auth_file fields: double quotes, "" for a quote. */
const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
/** Connection-string values inside a [databases] entry: single quotes, backslash escapes. */
const cv = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

// PgBouncers this process started and has not stopped: SIGKILLed (and their dirs removed) on exit
const live = new Map<ChildProcess, string>();
let hooked = false;

export async function startPgbouncer(cluster: EmbeddedCluster, opts: PgbouncerOptions, bin: string): Promise<TestPgbouncer> {
  const user = serverUser();
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-pgbouncer-'));
  const ini = path.join(dir, 'pgbouncer.ini');
  const authFile = path.join(dir, 'userlist.txt');
  const logFile = path.join(dir, 'pgbouncer.log');

  const dbLines = opts.databases.map((d) => {
    if (!/^[A-Za-z0-9_.-]+$/.test(d.name)) throw new Error(`database name ${JSON.stringify(d.name)}: the ini key cannot hold it`);
    const parts = [`host=127.0.0.1`, `port=${cluster.port}`, `dbname=${cv(d.dbname ?? d.name)}`];
    if (d.forceUser) parts.push(`user=${cv(d.forceUser.user)}`, `password=${cv(d.forceUser.password)}`);
    if (d.poolMode) parts.push(`pool_mode=${d.poolMode}`);
    return `${d.name} = ${parts.join(' ')}`;
  });
  const settings: Record<string, string | number> = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: authFile,
    admin_users: PGBOUNCER_ADMIN,
    pool_mode: opts.poolMode ?? 'session',
    logfile: logFile,
    // the tests look at server connections right after clients come and go
    server_check_delay: 0,
    ...opts.settings,
  };
  await fs.writeFile(
    ini,
    ['[databases]', ...dbLines, '', '[pgbouncer]', ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`), ''].join('\n'),
  );
  const users = { ...opts.users, [PGBOUNCER_ADMIN]: PGBOUNCER_ADMIN_PASSWORD };
  await fs.writeFile(
    authFile,
    Object.entries(users)
      .map(([u, p]) => `${q(u)} ${q(p)}\n`)
      .join(''),
    { mode: 0o600 },
  );
  if (user) {
    for (const f of [dir, ini, authFile]) await fs.chown(f, user.uid, user.gid);
  }

  const child = spawn(bin, [ini], {
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', (code) => {
      exited = code;
      live.delete(child);
      resolve();
    }),
  );
  live.set(child, dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const [c, d] of live) {
        c.kill('SIGKILL');
        rmSync(d, { recursive: true, force: true });
      }
    });
  }

  const clients: pg.Client[] = [];
  const dsnFor = (u: string, p: string, db: string) =>
    `postgresql://${encodeURIComponent(u)}:${encodeURIComponent(p)}@127.0.0.1:${port}/${encodeURIComponent(db)}?sslmode=disable`;
  const connectAs = async (u: string, p: string, db: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: u, password: p, database: db });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  const readLog = () => fs.readFile(logFile, 'utf8').catch(() => '');
  const stop = async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    if (exited === undefined) {
      child.kill('SIGTERM');
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5_000))]);
      if (exited === undefined) child.kill('SIGKILL');
      await exit;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // wait until the console answers
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited !== undefined) {
      const log = await readLog();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`pgbouncer exited (code ${exited}) before accepting connections:\n${output}\n${log}`);
    }
    try {
      const c = new pg.Client({
        host: '127.0.0.1',
        port,
        user: PGBOUNCER_ADMIN,
        password: PGBOUNCER_ADMIN_PASSWORD,
        database: 'pgbouncer',
      });
      c.on('error', () => undefined);
      await c.connect();
      await c.query('SHOW VERSION');
      await c.end();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`pgbouncer did not answer on 127.0.0.1:${port}: ${(err as Error).message}\n${output}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    host: '127.0.0.1',
    port,
    dir,
    logFile,
    consoleDsn: dsnFor(PGBOUNCER_ADMIN, PGBOUNCER_ADMIN_PASSWORD, 'pgbouncer'),
    dsnFor,
    connectAs,
    console: () => connectAs(PGBOUNCER_ADMIN, PGBOUNCER_ADMIN_PASSWORD, 'pgbouncer'),
    log: readLog,
    stop,
  };
}
