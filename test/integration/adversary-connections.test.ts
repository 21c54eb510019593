// An attacker who knows pgrevoke and attacks the way in rather than the playbook: it fills the
// server to max_connections with the role's sessions (reconnecting throughout), or, as a
// superuser, holds LOCK TABLE pg_authid so that no new login finishes. Real servers, the CLI as a
// subprocess.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult, jsonDoc } from '../helpers/cli.js';
import { canQuery, MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const HBA = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n';
const MAX_CONNECTIONS = 12;
const SUPERUSER_RESERVED = 3;
/** reserved_connections, PostgreSQL 16+ (for members of pg_use_reserved_connections). */
const RESERVED = 2;

interface Json {
  [k: string]: unknown;
}

/**
 * The role's sessions, opened one after another until the server refuses with 53300, each running a
 * query every 100 ms; then one loop goes on trying to log in again every 50 ms (a second loop would
 * make the failing logins' transient backends race the operator for the reserved slots). A session
 * that gets cut is replaced by that loop as soon as the server lets it.
 */
class Filler {
  readonly held = new Set<pg.Client>();
  refusedWith: string | null = null;
  loginsAfterFull = 0;
  private running = true;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly cl: TestCluster,
    private readonly user: string,
    private readonly password: string,
  ) {}

  private async login(): Promise<pg.Client> {
    const c = new pg.Client({ host: '127.0.0.1', port: this.cl.port, user: this.user, password: this.password, database: 'postgres' });
    c.on('error', () => this.held.delete(c));
    c.on('end', () => this.held.delete(c));
    await c.connect();
    this.held.add(c);
    const tick = setInterval(() => void c.query('SELECT 1').catch(() => clearInterval(tick)), 100);
    c.on('end', () => clearInterval(tick));
    return c;
  }

  /** Fill the server; resolves once a login was refused with 53300 and the retry loop runs. */
  async fill(): Promise<void> {
    for (;;) {
      try {
        await this.login();
      } catch (err) {
        this.refusedWith = (err as { code?: string }).code ?? String(err);
        break;
      }
    }
    this.loop = (async () => {
      while (this.running) {
        await new Promise((r) => setTimeout(r, 50));
        try {
          await this.login();
          this.loginsAfterFull++;
        } catch {
          /* full, or refused after the cutoff */
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all([...this.held].map((c) => c.end().catch(() => undefined)));
  }
}

describe.each(MAJORS)('an attacker against the way in, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const reservedHere = major >= 16 ? RESERVED : 0;
  const cli = (args: string[], dsn: string, env: NodeJS.ProcessEnv = {}) => runCli([...args, '--dsn', dsn], env, { timeoutMs: 90_000 });
  const roleSessions = async (name: string) =>
    (
      await cl.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
        [name],
      )
    )[0]!.n;
  /** Every error line pgrevoke printed: exactly the error and its hint, no stack. */
  const errorLines = (r: CliResult) => r.stderr.trimEnd().split('\n');

  beforeAll(async () => {
    cl = await startCluster(major, {
      max_connections: MAX_CONNECTIONS,
      superuser_reserved_connections: SUPERUSER_RESERVED,
      ...(major >= 16 ? { reserved_connections: RESERVED } : {}),
    });
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm-pw'`);
    await cl.sql(`CREATE ROLE evil LOGIN SUPERUSER PASSWORD 'e-pw'`);
    // an operator with everything a cutoff needs except a reserved slot
    await cl.sql(`CREATE ROLE oncall LOGIN CREATEROLE PASSWORD 'o-pw' IN ROLE pg_signal_backend`);
    if (major >= 16) {
      await cl.sql('GRANT mallory TO oncall WITH ADMIN OPTION');
      await cl.sql(`CREATE ROLE reserver LOGIN CREATEROLE PASSWORD 'r-pw' IN ROLE pg_signal_backend, pg_use_reserved_connections`);
    }
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('a superuser target holding LOCK TABLE pg_authid: every connect gives up within its timeout, exit 2, naming the catalog lock and guard', async () => {
    const evil = await cl.connectAs('evil', 'e-pw');
    await evil.query('BEGIN');
    await evil.query('LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE');
    try {
      for (const [args, env, boundS] of [
        [['--connect-timeout', '2'], {}, 2],
        [[], { PGCONNECT_TIMEOUT: '3' }, 3],
        [[], {}, 10], // the default bound
      ] as const) {
        const t0 = Date.now();
        const r = await cli(['cutoff', 'evil', '--yes', ...args], cl.dsn(), env);
        const took = (Date.now() - t0) / 1000;
        expect(r.code, r.stderr).toBe(2);
        expect(took).toBeGreaterThanOrEqual(boundS);
        expect(took).toBeLessThan(boundS + 15);
        const lines = errorLines(r);
        expect(lines, r.stderr).toHaveLength(2);
        expect(lines[0]).toMatch(/^pgrevoke: error: could not connect to .*: the login did not finish within \d+ s .*\[SQLSTATE 08001\]$/);
        expect(lines[1]).toMatch(/^hint: .*catalog lock held in an open transaction/);
        expect(lines[1]).toContain('pgrevoke guard');
        expect(r.stdout).toBe('');
      }
    } finally {
      await evil.query('ROLLBACK');
      await evil.end();
    }
    // nothing was changed
    expect(await cl.sql(`SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'evil'`)).toEqual([
      { rolcanlogin: true, rolsuper: true },
    ]);
  });

  it('inspect says ahead of time which operator would be locked out once the role fills the server', async () => {
    const asOncall = jsonDoc<Json>(await cli(['inspect', 'mallory', '--json'], cl.url('oncall', 'o-pw')));
    const finding = (asOncall.findings as Json[]).find((f) => f.id === 'operator.no_reserved_slot');
    expect(finding, JSON.stringify(asOncall.findings)).toBeDefined();
    expect(finding!.detail).toContain(`max_connections ${MAX_CONNECTIONS}`);
    expect(finding!.detail).toContain(`${SUPERUSER_RESERVED} (superuser_reserved_connections)`);
    expect(asOncall.connectionSlots).toMatchObject({
      maxConnections: MAX_CONNECTIONS,
      superuserReserved: SUPERUSER_RESERVED,
      reserved: major >= 16 ? RESERVED : null,
      operatorUsesReserved: false,
    });
    const asSuper = jsonDoc<Json>(await cli(['inspect', 'mallory', '--json'], cl.dsn()));
    expect((asSuper.findings as Json[]).map((f) => f.id)).not.toContain('operator.no_reserved_slot');
    if (major >= 16) {
      const asReserver = jsonDoc<Json>(await cli(['inspect', 'mallory', '--json'], cl.url('reserver', 'r-pw')));
      expect((asReserver.findings as Json[]).map((f) => f.id)).not.toContain('operator.no_reserved_slot');
      expect(asReserver.connectionSlots).toMatchObject({ operatorUsesReserved: true });
    }
    // a superuser target can take the reserved slots too: no new login of anyone gets in then
    const evilAsSuper = jsonDoc<Json>(await cli(['inspect', 'evil', '--json'], cl.dsn()));
    expect((evilAsSuper.findings as Json[]).find((f) => f.id === 'operator.no_reserved_slot')?.detail).toMatch(/superuser/);
  });

  it('the role fills the server: a non-superuser operator gets the clear 53300 error (exit 2); a superuser operator contains', async () => {
    const filler = new Filler(cl, 'mallory', 'm-pw');
    try {
      await filler.fill();
      expect(filler.refusedWith).toBe('53300');
      // deterministic: every slot but the reserved ones, less the sessions already open (the test's own)
      const others = (
        await cl.sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename IS DISTINCT FROM 'mallory'`,
        )
      )[0]!.n;
      expect(filler.held.size).toBe(MAX_CONNECTIONS - SUPERUSER_RESERVED - reservedHere - others);
      expect(await roleSessions('mallory')).toBe(filler.held.size);

      const refused = await cli(['cutoff', 'mallory', '--yes'], cl.url('oncall', 'o-pw'));
      expect(refused.code, refused.stderr).toBe(2);
      const lines = errorLines(refused);
      expect(lines, refused.stderr).toHaveLength(2);
      expect(lines[0]).toMatch(/^pgrevoke: error: the server is full .*\(oncall@127\.0\.0\.1:\d+\/postgres\) \[SQLSTATE 53300\]$/);
      expect(lines[1]).toMatch(/^hint: .*superuser/);
      expect(lines[1]).toContain(major >= 16 ? 'pg_use_reserved_connections' : 'superuser_reserved_connections');
      expect(refused.stdout).toBe('');
      if (major >= 16) {
        // a member of pg_use_reserved_connections gets in through reserved_connections
        const r = await cli(['inspect', 'mallory', '--json'], cl.url('reserver', 'r-pw'));
        expect(r.code, r.stderr).toBe(0);
        expect((jsonDoc<Json>(r).sessions as Json[]).length).toBe(filler.held.size);
      }

      const held = [...filler.held];
      const r = await cli(['cutoff', 'mallory', '--yes', '--json'], cl.dsn());
      expect(r.code, r.stderr).toBe(0);
      const d = jsonDoc<Json>(r);
      expect(d.exposure).toEqual([]);
      expect((d.terminated as Json[]).length).toBeGreaterThanOrEqual(held.length);
      expect(await cl.sql(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'mallory'`)).toEqual([{ rolcanlogin: false }]);
      expect(await roleSessions('mallory')).toBe(0);
      for (const c of held) expect(await canQuery(c)).toBe(false);
      // the reconnecting attacker keeps trying, and stays out
      const tries = filler.loginsAfterFull;
      await new Promise((res) => setTimeout(res, 500));
      expect(filler.loginsAfterFull).toBe(tries);
      expect(await roleSessions('mallory')).toBe(0);
    } finally {
      await filler.stop();
    }
    // the server has room again: the non-superuser operator now connects (and finds nothing left)
    await waitFor(async () => (await cli(['inspect', 'mallory', '--json'], cl.url('oncall', 'o-pw'))).code === 0, 20_000, 'room');
  });
});
