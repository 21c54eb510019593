// collectHba against real servers: what pg_hba_file_rules says, checked against what the server actually does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { MTIME_LAG_S } from '../../src/checks/hba-reload.js';
import { collectHba, hbaAllowsWithoutPassword, hbaCheck, type HbaCollectContext } from '../../src/checks/hba.js';
import type { HbaEvalScenario } from '../../src/hba/evaluate.js';
import type { HbaDecision, HbaFacts } from '../../src/hba/types.js';
import type { RoleFacts, RoleInfo, ServerFacts, SessionRow } from '../../src/checks/types.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Always first, so the harness (socket trust, TCP postgres) can still connect. */
const BASE = 'local all all trust\nhost all postgres 127.0.0.1/32 scram-sha-256\n';
const HOSTILE = 'Bob "the" Admin';

describe.each(MAJORS)('pg_hba collection on PostgreSQL %i', (major) => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster(major);
    await cluster.sql(`CREATE ROLE bob LOGIN PASSWORD 'bob-pw'`);
    await cluster.sql(`CREATE ROLE "Bob ""the"" Admin" LOGIN PASSWORD 'hostile-pw'`);
    await cluster.sql(`CREATE ROLE admins NOLOGIN`);
    await cluster.sql(`CREATE ROLE ops NOLOGIN`);
    await cluster.sql(`GRANT admins TO ops`);
    await cluster.sql(`GRANT ops TO bob`); // bob is in admins only through ops
    await cluster.sql(`CREATE ROLE auditor LOGIN PASSWORD 'auditor-pw'`);
    await cluster.sql(`CREATE DATABASE app`);
  });

  afterAll(async () => {
    await cluster?.destroyAll();
  });

  async function fresh<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', password: cluster.password, database: 'postgres' });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  const loadTime = () => fresh(async (c) => Number((await c.query(`SELECT extract(epoch FROM pg_conf_load_time()) AS t`)).rows[0].t));

  async function writeHba(lines: string): Promise<void> {
    await cluster.writeDataFile('pg_hba.conf', BASE + lines);
  }

  /** pg_reload_conf(), then wait until the postmaster has processed it (a new backend inherits its reload time). */
  async function reload(): Promise<void> {
    // a file stamped within the mtime's uncertainty of the reload is "cannot tell", not "reloaded"
    await sleep(MTIME_LAG_S * 1000 + 20);
    const before = await loadTime();
    const [row] = await cluster.sql<{ ok: boolean }>('SELECT pg_reload_conf() AS ok');
    expect(row!.ok).toBe(true);
    for (let i = 0; i < 200; i++) {
      if ((await loadTime()) > before) return;
      await sleep(50);
    }
    throw new Error('the reload was not observed');
  }

  /** Try a TCP password login; 'ok' or the SQLSTATE. */
  async function login(user: string, password: string, host = '127.0.0.1'): Promise<string> {
    const c = new pg.Client({ host, port: cluster.port, user, password, database: 'app' });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.end();
      return 'ok';
    } catch (e) {
      return String((e as { code?: string }).code ?? (e as Error).message);
    }
  }

  async function ctxFor(name: string, sessions: SessionRow[] = []): Promise<HbaCollectContext> {
    const [r] = await cluster.sql<Record<string, unknown>>(
      `SELECT oid::int AS oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
              rolbypassrls, rolconnlimit, rolvaliduntil::text AS validuntil, coalesce(rolvaliduntil < now(), false) AS expired
         FROM pg_roles WHERE rolname = $1`,
      [name],
    );
    const role: RoleInfo = {
      oid: Number(r!.oid),
      name: String(r!.rolname),
      superuser: Boolean(r!.rolsuper),
      inherit: Boolean(r!.rolinherit),
      createRole: Boolean(r!.rolcreaterole),
      createDb: Boolean(r!.rolcreatedb),
      canLogin: Boolean(r!.rolcanlogin),
      replication: Boolean(r!.rolreplication),
      bypassRls: Boolean(r!.rolbypassrls),
      connectionLimit: Number(r!.rolconnlimit),
      validUntil: (r!.validuntil as string | null) ?? null,
      expired: Boolean(r!.expired),
    };
    const memberOf = await cluster.sql<{ role: string; member: string; depth: number }>(
      `WITH RECURSIVE up(roleid, member, depth) AS (
         SELECT m.roleid, m.member, 1 FROM pg_auth_members m WHERE m.member = $1
         UNION
         SELECT m.roleid, m.member, up.depth + 1 FROM pg_auth_members m JOIN up ON m.member = up.roleid)
       SELECT g.rolname AS role, mm.rolname AS member, up.depth FROM up
         JOIN pg_roles g ON g.oid = up.roleid JOIN pg_roles mm ON mm.oid = up.member`,
      [role.oid],
    );
    const [s] = await cluster.sql<Record<string, unknown>>(
      `SELECT version() AS version, current_setting('server_version_num')::int AS num, pg_is_in_recovery() AS rec,
              current_setting('hba_file') AS hba, current_setting('data_directory') AS dd`,
    );
    const server: ServerFacts = {
      version: String(s!.version),
      versionNum: Number(s!.num),
      major: Math.floor(Number(s!.num) / 10000),
      inRecovery: Boolean(s!.rec),
      hbaFile: String(s!.hba),
      dataDirectory: String(s!.dd),
    };
    expect(server.major).toBe(major);
    const databases = (
      await cluster.sql<{ datname: string }>(`SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate`)
    ).map((d) => d.datname);
    return {
      role,
      memberships: { memberOf: memberOf.map((m) => ({ ...m, grantor: null, adminOption: false, depth: Number(m.depth) })), members: [] },
      server,
      sessions,
      databases,
    };
  }

  // the server too: whether a name can be written in pg_hba.conf depends on its major
  const roleFacts = (ctx: HbaCollectContext, hba: HbaFacts) => ({ role: ctx.role, server: ctx.server, hba }) as RoleFacts;

  function decision(
    facts: HbaFacts,
    want: { transport: 'local' | 'host'; address?: string; ssl?: boolean; database?: string },
  ): HbaDecision {
    const hits = facts.decisions.filter(
      (d) =>
        d.scenario.transport === want.transport &&
        d.scenario.database === (want.database ?? 'app') &&
        !(d.scenario as HbaEvalScenario).replication &&
        d.scenario.ssl === (want.ssl ?? false) &&
        (want.transport === 'local' || d.scenario.address === want.address),
    );
    expect(hits).toHaveLength(1);
    return hits[0]!;
  }

  it('reports a reject rule shadowed by an earlier line, naming both lines, and the server really admits the role', async () => {
    await writeHba('host all all 0.0.0.0/0 scram-sha-256\nhost all bob 0.0.0.0/0 reject\n');
    await reload();

    const bob = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'bob', password: 'bob-pw', database: 'app' });
    await bob.connect(); // the reject at line 4 does not stop it
    try {
      const pid = (await bob.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const [sa] = await cluster.sql<{ addr: string }>(`SELECT host(client_addr) AS addr FROM pg_stat_activity WHERE pid = $1`, [pid]);
      const session = { pid, clientAddr: sa!.addr } as SessionRow;
      const ctx = await ctxFor('bob', [session]);
      const facts = await collectHba(cluster.admin, ctx);

      expect(facts.readable).toBe(true);
      expect(facts.fileErrors).toEqual([]);
      expect(facts.reloadPending).toBe(false);
      expect(facts.file).toBe(cluster.hbaFile);
      expect(facts.rules.map((r) => r.lineNumber)).toEqual([1, 2, 3, 4]);
      expect(facts.shadowedRejects).toHaveLength(1);
      expect(facts.shadowedRejects[0]).toMatchObject({ rejectLine: 4, shadowingLine: 3, shadowingAuthMethod: 'scram-sha-256' });

      const d = decision(facts, { transport: 'host', address: '127.0.0.1' });
      expect(d).toMatchObject({ outcome: 'allow', line: 3, authMethod: 'scram-sha-256', reason: null });
      expect(d.scenario.addressLabel).toBe(`session ${pid}`);
      expect(decision(facts, { transport: 'local' })).toMatchObject({ outcome: 'allow', line: 1, authMethod: 'trust' });

      const findings = hbaCheck.evaluate(roleFacts(ctx, facts));
      const shadowed = findings.filter((f) => f.id === 'hba.reject_shadowed');
      expect(shadowed).toHaveLength(1);
      expect(shadowed[0]!.detail).toMatch(/reject rule at line 4 \(host all bob 0\.0\.0\.0\/0 reject\) never fires for/);
      expect(shadowed[0]!.detail).toMatch(/line 3 \(host all all 0\.0\.0\.0\/0 scram-sha-256\) matches first/);
      expect(findings.find((f) => f.id === 'hba.not_rejected')?.severity).toBe('high');
    } finally {
      await bob.end();
    }
  });

  it('a reject through inherited +group membership placed first is in force and not reported as shadowed', async () => {
    await writeHba('host all +admins 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    expect(await login('bob', 'bob-pw')).toBe('28000');
    expect(await login('auditor', 'auditor-pw')).toBe('ok');

    const ctx = await ctxFor('bob');
    const facts = await collectHba(cluster.admin, ctx);
    expect(facts.shadowedRejects).toEqual([]);
    expect(decision(facts, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'reject', line: 3 });
    expect(decision(facts, { transport: 'host', address: '2001:db8::7' })).toMatchObject({ outcome: 'no_match' });

    // ...but the socket still trusts everyone: evaluated as an allow without password, and the server agrees
    expect(decision(facts, { transport: 'local' })).toMatchObject({ outcome: 'allow', line: 1, authMethod: 'trust' });
    expect(hbaAllowsWithoutPassword(facts).map((d) => d.scenario.transport)).toContain('local');
    expect(await login('bob', 'wrong-password', cluster.socketDir)).toBe('ok');
    expect(hbaCheck.evaluate(roleFacts(ctx, facts)).find((f) => f.id === 'hba.not_rejected')?.detail).toMatch(
      /line 1 \(local all all trust\)/,
    );

    const auditor = await collectHba(cluster.admin, await ctxFor('auditor'));
    expect(decision(auditor, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'allow', line: 4 });
  });

  it('matches a quoted hostile role name exactly, as the server does', async () => {
    await writeHba('host all "Bob ""the"" Admin" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    expect(await login(HOSTILE, 'hostile-pw')).toBe('28000');
    expect(await login('bob', 'bob-pw')).toBe('ok');

    const hostile = await collectHba(cluster.admin, await ctxFor(HOSTILE));
    expect(hostile.rules.find((r) => r.lineNumber === 3)?.userName).toEqual([HOSTILE]);
    expect(decision(hostile, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'reject', line: 3 });
    const bob = await collectHba(cluster.admin, await ctxFor('bob'));
    expect(decision(bob, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'allow', line: 4 });
  });

  it('a token starting with / is a regex on PG16+ (undecidable) and a literal name before', async () => {
    await writeHba('host all /^bo 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    const facts = await collectHba(cluster.admin, await ctxFor('bob'));
    expect(facts.fileErrors).toEqual([]);
    const d = decision(facts, { transport: 'host', address: '127.0.0.1' });
    if (major >= 16) {
      expect(await login('bob', 'bob-pw')).toBe('28000');
      expect(d.outcome).toBe('undecidable');
      expect(d.reason).toMatch(/^undecidable because the rule uses a PostgreSQL regular expression \(line 3/);
    } else {
      expect(await login('bob', 'bob-pw')).toBe('ok');
      expect(d).toMatchObject({ outcome: 'allow', line: 4 });
    }
  });

  it('a line with a bad auth method: listed as an error, pg_reload_conf() still true, the old rules stay in force, every decision says so', async () => {
    await writeHba('host all bob 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    expect(await login('bob', 'bob-pw')).toBe('28000');

    await writeHba('host all all 0.0.0.0/0 scram-sha-256\nhost all all 0.0.0.0/0 bogus\n');
    await reload(); // asserts pg_reload_conf() returned true
    expect(await login('bob', 'bob-pw')).toBe('28000'); // the file on disk would admit bob: it is not in force

    const ctx = await ctxFor('bob');
    const facts = await collectHba(cluster.admin, ctx);
    expect(facts.fileErrors).toHaveLength(1);
    expect(facts.fileErrors[0]).toMatchObject({ line: 4 });
    expect(facts.fileErrors[0]!.error).toMatch(/invalid authentication method "bogus"/);
    expect(facts.decisions.length).toBeGreaterThan(0);
    for (const d of facts.decisions)
      expect(d.reason).toMatch(/the file on disk has errors \(line 4\).*rules in force are the previous ones/);
    expect(decision(facts, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'allow', line: 3 });

    const findings = hbaCheck.evaluate(roleFacts(ctx, facts));
    const fe = findings.filter((f) => f.id === 'hba.file_error');
    expect(fe.map((f) => f.severity)).toEqual(['high']);
    expect(fe[0]!.detail).toMatch(/line 4: invalid authentication method "bogus"/);
    expect(fe[0]!.remediation).toMatch(/Fix the error at line 4.*pg_reload_conf/);
  });

  it('hostssl with ssl=off is an error row, yet the file still loads: no "previous rules" caveat', async () => {
    const [ssl] = await cluster.sql<{ ssl: string }>(`SELECT current_setting('ssl') AS ssl`);
    expect(ssl!.ssl).toBe('off');
    await writeHba('host all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    expect(await login('bob', 'bob-pw')).toBe('ok');

    await writeHba('hostssl all all 0.0.0.0/0 md5\nhost all bob 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    expect(await login('bob', 'bob-pw')).toBe('28000'); // line 4 is in force: the reload was accepted

    const ctx = await ctxFor('bob');
    const facts = await collectHba(cluster.admin, ctx);
    expect(facts.fileErrors).toHaveLength(1);
    expect(facts.fileErrors[0]).toMatchObject({ line: 3 });
    expect(facts.fileErrors[0]!.error).toMatch(/cannot match because SSL is disabled/);
    expect(facts.decisions.some((d) => /previous ones/.test(d.reason ?? ''))).toBe(false);
    expect(facts.decisions.some((d) => d.scenario.ssl)).toBe(false); // ssl=off: no SSL connection is possible
    expect(decision(facts, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'reject', line: 4 });
    expect(
      hbaCheck
        .evaluate(roleFacts(ctx, facts))
        .filter((f) => f.id === 'hba.file_error')
        .map((f) => f.severity),
    ).toEqual(['low']);
  });

  it('reloadPending: false right after a reload, true once the file is edited without one', async () => {
    await writeHba('host all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    const ctx = await ctxFor('bob');
    const before = await collectHba(cluster.admin, ctx);
    expect(before.reloadPending).toBe(false);
    expect(hbaCheck.evaluate(roleFacts(ctx, before)).some((f) => f.id === 'hba.reload_pending')).toBe(false);

    await sleep(1500); // pg_stat_file has 1 s resolution
    await writeHba('host all bob 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 scram-sha-256\n');
    const after = await collectHba(cluster.admin, ctx);
    expect(after.reloadPending).toBe(true);
    expect(await login('bob', 'bob-pw')).toBe('ok'); // the reject on disk is not in force yet
    expect(decision(after, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'reject', line: 3 });
    for (const d of after.decisions) expect(d.reason).toMatch(/changed after the last reload/);
    const pending = hbaCheck.evaluate(roleFacts(ctx, after)).filter((f) => f.id === 'hba.reload_pending');
    expect(pending.map((f) => f.severity)).toEqual(['medium']);

    await reload();
    expect((await collectHba(cluster.admin, ctx)).reloadPending).toBe(false);
  });

  it('a non-superuser operator: readable=false with the reason, no throw, its transaction stays usable', async () => {
    await writeHba('host all all 0.0.0.0/0 scram-sha-256\n');
    await reload();
    const ctx = await ctxFor('bob');
    const op = await cluster.connectAs('auditor', 'auditor-pw');

    await op.query('BEGIN');
    const facts = await collectHba(op, ctx);
    expect((await op.query('SELECT 1 AS one')).rows[0].one).toBe(1); // nothing aborted the transaction
    await op.query('COMMIT');
    expect(facts).toMatchObject({ readable: false, reloadPending: null, decisions: [], shadowedRejects: [], rules: [] });
    expect(facts.unreadableReason).toMatch(/^permission denied: reading pg_hba_file_rules needs superuser/);
    const findings = hbaCheck.evaluate(roleFacts(ctx, facts));
    expect(findings.map((f) => [f.id, f.severity])).toEqual([['hba.unreadable', 'info']]);
    expect(hbaAllowsWithoutPassword(facts)).toEqual([]);

    // SELECT on the view alone is not enough (the function behind it is not executable): still unreadable, still no throw
    await cluster.sql('GRANT SELECT ON pg_catalog.pg_hba_file_rules TO auditor');
    expect(await collectHba(op, ctx)).toMatchObject({ readable: false });

    // with the function too, the rules are readable; the server will not stat or read the file for it, so
    // this host's file cannot be shown to be the server's: the view alone, and a reload pending or not is unknown
    await cluster.sql('GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO auditor');
    expect(await collectHba(op, ctx)).toMatchObject({ readable: true, rawSource: null, reloadPending: null });

    // with pg_stat_file, this host's file (the test runs beside the server) is provably the server's
    // (same size and modification): quotes and mtime come from there
    await cluster.sql('GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text), pg_catalog.pg_stat_file(text, boolean) TO auditor');
    const granted = await collectHba(op, ctx);
    expect(granted.readable).toBe(true);
    expect(granted.rawSource).toBe('local');
    expect(granted.reloadPending).toBe(false);
    expect(decision(granted, { transport: 'host', address: '127.0.0.1' })).toMatchObject({ outcome: 'allow', line: 3 });
    expect(hbaCheck.evaluate(roleFacts(ctx, granted)).find((f) => f.id === 'hba.not_rejected')?.detail).toMatch(/line 3 .* admits/);
  });
});
