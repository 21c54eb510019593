// The pure parts of PgBouncer support: version gate, console quoting, reading SHOW rows by name,
// shared-user detection, plan building (default and killPool) with skip reasons, the summary.
import { describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../src/errors.js';
import {
  CONSOLE_ARG_MAX_BYTES,
  consoleIdent,
  consoleParams,
  KILL_CLIENT_SINCE,
  parseVersion,
  pgbouncerNodeLabel,
  show,
  supportsKillClient,
  tryConsoleIdent,
  versionAtLeast,
  type ConsoleRow,
  type PgbouncerConsole,
} from '../../src/pgbouncer/console.js';
import { applyPgbouncer, planPgbouncer, summarisePgbouncer, type PgbouncerResult } from '../../src/pgbouncer/cutoff.js';
import { analysePgbouncer, type PgbouncerSnapshot } from '../../src/pgbouncer/inspect.js';
import { freePort } from '../../src/embedded/cluster.js';

const NODE = 'pgbouncer 10.0.0.5:6432';

// ---- fixtures: SHOW rows as PgBouncer 1.18 prints them (1.24 adds `replication`, `prepared_statements`, `id`)

let port = 50000;
function sock(type: 'C' | 'S', user: string, database: string, state: string, ptr: string, link = '', extra: ConsoleRow = {}): ConsoleRow {
  return {
    type,
    user,
    database,
    state,
    addr: type === 'C' ? '10.1.1.1' : '10.0.0.9',
    port: String(port++),
    local_addr: '10.0.0.5',
    local_port: '6432',
    connect_time: '2026-11-23 21:00:00 UTC',
    request_time: '2026-11-23 21:00:01 UTC',
    wait: '0',
    wait_us: '0',
    close_needed: '0',
    ptr,
    link,
    remote_pid: type === 'S' ? String(4000 + Number.parseInt(ptr.slice(-2), 16)) : '0',
    tls: '',
    application_name: '',
    ...extra,
  };
}
const db = (name: string, forceUser: string | null = null, paused = '0'): ConsoleRow => ({
  name,
  host: '10.0.0.9',
  port: '5432',
  database: 'appdb',
  force_user: forceUser,
  pool_size: '20',
  min_pool_size: '0',
  reserve_pool: '0',
  pool_mode: null,
  max_connections: '0',
  current_connections: '1',
  paused,
  disabled: '0',
});
const pool = (database: string, user: string, mode = 'session'): ConsoleRow => ({
  database,
  user,
  cl_active: '1',
  sv_idle: '0',
  pool_mode: mode,
});
const config = (extra: Record<string, string> = {}): ConsoleRow[] =>
  Object.entries({
    auth_type: 'scram-sha-256',
    auth_file: '/etc/pgbouncer/userlist.txt',
    auth_query: 'SELECT usename, passwd FROM pg_shadow WHERE usename=$1',
    auth_user: '',
    auth_hba_file: '',
    admin_users: 'pgb_admin',
    stats_users: '',
    query_wait_timeout: '120',
    ...extra,
  }).map(([key, value]) => ({ key, value, default: null, changeable: 'yes' }));

/**
 * Mallory: a session client in sales-Db linked to its server, a transaction client in tx with an idle
 * server of hers in the pool, a client in `shared` (forced user app_shared). Bob (bystander): clients in
 * sales-Db, tx and shared, each with its own server; app_shared has a second server serving bob.
 */
function snapshot118(over: Partial<PgbouncerSnapshot> = {}): PgbouncerSnapshot {
  return {
    version: 'PgBouncer 1.18.0',
    clients: [
      sock('C', 'pgb_admin', 'pgbouncer', 'active', '0xa0'),
      sock('C', 'Mallory', 'sales-Db', 'active', '0xc1', '0x51'),
      sock('C', 'Mallory', 'tx', 'active', '0xc2'),
      sock('C', 'Mallory', 'shared', 'active', '0xc3', '0x53'),
      sock('C', 'mallory', 'sales-Db', 'active', '0xc4', '0x54'),
      sock('C', 'bob', 'sales-Db', 'active', '0xc5', '0x55'),
      sock('C', 'bob', 'tx', 'active', '0xc6'),
      sock('C', 'bob', 'shared', 'active', '0xc7', '0x57'),
    ],
    servers: [
      sock('S', 'Mallory', 'sales-Db', 'active', '0x51', '0xc1'),
      sock('S', 'Mallory', 'tx', 'idle', '0x52'),
      sock('S', 'app_shared', 'shared', 'active', '0x53', '0xc3'),
      sock('S', 'mallory', 'sales-Db', 'active', '0x54', '0xc4'),
      sock('S', 'bob', 'sales-Db', 'active', '0x55', '0xc5'),
      sock('S', 'bob', 'tx', 'idle', '0x56'),
      sock('S', 'app_shared', 'shared', 'active', '0x57', '0xc7'),
    ],
    pools: [
      pool('pgbouncer', 'pgbouncer', 'statement'),
      pool('sales-Db', 'Mallory'),
      pool('sales-Db', 'mallory'),
      pool('sales-Db', 'bob'),
      pool('tx', 'Mallory', 'transaction'),
      pool('tx', 'bob', 'transaction'),
      pool('shared', 'app_shared'),
    ],
    databases: [{ ...db('pgbouncer', 'pgbouncer'), host: null }, db('sales-Db'), db('tx'), db('shared', 'app_shared'), db('reports')],
    config: config(),
    ...over,
  };
}

/** The same, as 1.24 prints it: more columns, an `id` per socket. */
function snapshot124(): PgbouncerSnapshot {
  const s = snapshot118();
  let id = 100;
  const withId = (r: ConsoleRow): ConsoleRow => ({ id: String(id++), replication: 'none', prepared_statements: '0', ...r });
  return { ...s, version: 'PgBouncer 1.24.0', clients: s.clients.map(withId), servers: s.servers.map(withId) };
}

describe('version and the KILL_CLIENT gate', () => {
  it('parses SHOW VERSION text', () => {
    expect(parseVersion('PgBouncer 1.18.0')).toEqual({ text: 'PgBouncer 1.18.0', major: 1, minor: 18, patch: 0 });
    expect(parseVersion('PgBouncer 1.25.2')).toMatchObject({ major: 1, minor: 25, patch: 2 });
    expect(parseVersion('PgBouncer 1.24')).toMatchObject({ major: 1, minor: 24, patch: 0 });
    expect(() => parseVersion('PostgreSQL')).toThrow(PgrevokeError);
  });

  it('KILL_CLIENT exists from 1.24.0 (NEWS.md 1.24.0, #1147)', () => {
    expect(KILL_CLIENT_SINCE).toEqual([1, 24, 0]);
    const has = (t: string) => supportsKillClient(parseVersion(`PgBouncer ${t}`));
    expect(has('1.18.0')).toBe(false);
    expect(has('1.23.1')).toBe(false);
    expect(has('1.24.0')).toBe(true);
    expect(has('1.25.2')).toBe(true);
    expect(has('2.0.0')).toBe(true);
    expect(versionAtLeast({ major: 1, minor: 9, patch: 0 }, [1, 24, 0])).toBe(false);
  });
});

describe('console quoting', () => {
  it('always double-quotes, doubling embedded quotes', () => {
    expect(consoleIdent('sales-Db')).toBe('"sales-Db"');
    expect(consoleIdent('appdb')).toBe('"appdb"');
    expect(consoleIdent('a"b')).toBe('"a""b"');
    expect(consoleIdent('x; SHUTDOWN')).toBe('"x; SHUTDOWN"');
  });

  it('refuses what the console cannot take: NUL, empty, over 63 bytes quoted', () => {
    expect(() => consoleIdent('a\0b')).toThrow(/NUL/);
    expect(() => consoleIdent('')).toThrow(PgrevokeError);
    expect(CONSOLE_ARG_MAX_BYTES).toBe(63);
    expect(consoleIdent('d'.repeat(61))).toHaveLength(63);
    expect(() => consoleIdent('d'.repeat(62))).toThrow(/too long/);
    // bytes, not characters: é is two bytes in UTF-8
    expect(consoleIdent('é'.repeat(30))).toBe(`"${'é'.repeat(30)}"`);
    expect(tryConsoleIdent('é'.repeat(31))).toBeNull();
    // a quote doubles, and the doubled form counts
    expect(tryConsoleIdent('"'.repeat(31))).toBeNull();
  });
});

describe('console connection parameters', () => {
  it('always the "pgbouncer" database; host:port label without the password', () => {
    const p = consoleParams('postgresql://pgb_admin:s3cret@10.0.0.5:6432/appdb', { PGDATABASE: 'other' });
    expect(p).toMatchObject({ host: '10.0.0.5', port: 6432, user: 'pgb_admin', database: 'pgbouncer', password: 's3cret' });
    expect(pgbouncerNodeLabel(p)).toBe('pgbouncer 10.0.0.5:6432');
    expect(consoleParams('host=/run/pgbouncer port=6432 user=admin', {}).database).toBe('pgbouncer');
  });

  it('show() keys rows by column name whatever their order, and turns numbers into strings', async () => {
    const fake = {
      client: {
        query: async (text: string) => {
          expect(text).toBe('SHOW CLIENTS');
          return {
            fields: [{ name: 'id' }, { name: 'user' }, { name: 'port' }, { name: 'link' }],
            rows: [{ link: '', port: 5432, user: 'Mallory', id: '7' }],
          };
        },
      },
      node: NODE,
    } as unknown as PgbouncerConsole;
    expect(await show(fake, 'CLIENTS')).toEqual([{ id: '7', user: 'Mallory', port: '5432', link: '' }]);
  });
});

describe('analysePgbouncer', () => {
  it('lists exactly the role’s clients (case-sensitive) and the servers linked to them or logged in as it', () => {
    const i = analysePgbouncer(NODE, ['Mallory'], snapshot118());
    expect(i.version).toMatchObject({ major: 1, minor: 18, patch: 0 });
    expect(i.killClient).toBe(false);
    expect(i.clients.map((c) => [c.user, c.database, c.ptr])).toEqual([
      ['Mallory', 'sales-Db', '0xc1'],
      ['Mallory', 'tx', '0xc2'],
      ['Mallory', 'shared', '0xc3'],
    ]);
    expect(i.clients.every((c) => c.id === null && !c.console)).toBe(true);
    expect(i.servers.map((s) => [s.user, s.database, s.ptr, s.clientPtr])).toEqual([
      ['Mallory', 'sales-Db', '0x51', '0xc1'],
      ['Mallory', 'tx', '0x52', null],
      ['app_shared', 'shared', '0x53', '0xc3'],
    ]);
    expect(i.servers[0]!.remotePid).toBe(4000 + 0x51);
  });

  it('recognises the shared user from force_user, and from a linked server logged in as someone else', () => {
    const i = analysePgbouncer(NODE, ['Mallory'], snapshot118());
    expect(i.pools).toEqual([
      { database: 'sales-Db', user: 'Mallory', sharedUser: null, sharedVia: null, poolMode: 'session', roleClients: 1, roleServers: 1 },
      {
        database: 'shared',
        user: 'app_shared',
        sharedUser: 'app_shared',
        sharedVia: 'force_user',
        poolMode: 'session',
        roleClients: 1,
        roleServers: 1,
      },
      { database: 'tx', user: 'Mallory', sharedUser: null, sharedVia: null, poolMode: 'transaction', roleClients: 1, roleServers: 1 },
    ]);
    // no force_user in SHOW DATABASES, but the linked server logged in as `svc` (e.g. an older or patched setup)
    const s = snapshot118({
      clients: [sock('C', 'Mallory', 'reports', 'active', '0xd1', '0x61')],
      servers: [sock('S', 'svc', 'reports', 'active', '0x61', '0xd1')],
      pools: [pool('reports', 'svc')],
    });
    const j = analysePgbouncer(NODE, ['Mallory'], s);
    expect(j.pools).toEqual([
      {
        database: 'reports',
        user: 'svc',
        sharedUser: 'svc',
        sharedVia: 'server_user',
        poolMode: 'session',
        roleClients: 1,
        roleServers: 1,
      },
    ]);
    expect(j.findings.map((f) => f.id)).toContain('pgbouncer.shared_user');
  });

  it('counts bystanders per database entry and reports findings with stable ids', () => {
    const i = analysePgbouncer(NODE, ['Mallory'], snapshot118());
    expect(i.databases.find((d) => d.name === 'sales-Db')).toMatchObject({ clients: 3, roleClients: 1, bystanderClients: 2 });
    expect(i.databases.find((d) => d.name === 'shared')).toMatchObject({ forceUser: 'app_shared', roleClients: 1, bystanderClients: 1 });
    expect(i.findings.map((f) => [f.id, f.severity, f.exposure])).toEqual([
      ['pgbouncer.clients', 'critical', true],
      ['pgbouncer.servers', 'high', true],
      ['pgbouncer.shared_user', 'critical', true],
      ['pgbouncer.no_kill_client', 'info', false],
    ]);
    const shared = i.findings.find((f) => f.id === 'pgbouncer.shared_user')!;
    expect(shared.detail).toContain('auth_file /etc/pgbouncer/userlist.txt');
    expect(shared.remediation).toMatch(/auth_file .*auth_query.*RELOAD/);
    expect(i.findings.find((f) => f.id === 'pgbouncer.no_kill_client')!.detail).toBe(
      'KILL_CLIENT needs PgBouncer >= 1.24.0; PgBouncer 1.18.0 here. The console can only RECONNECT or KILL a whole database.',
    );
  });

  it('without clients: forced-user entries are a possibility to check, not exposure; admin_users is', () => {
    const s = snapshot118({ config: config({ admin_users: 'pgb_admin, Eve', stats_users: 'Trent' }) });
    const eve = analysePgbouncer(NODE, ['Eve'], s);
    expect(eve.clients).toEqual([]);
    expect(eve.findings.map((f) => [f.id, f.severity, f.exposure])).toEqual([
      ['pgbouncer.shared_user_possible', 'medium', false],
      ['pgbouncer.console_access', 'critical', true],
    ]);
    expect(analysePgbouncer(NODE, ['Trent'], s).findings.find((f) => f.id === 'pgbouncer.console_access')).toMatchObject({
      severity: 'medium',
      exposure: false,
    });
  });

  it('reads 1.24 rows by name: the id column is picked up and KILL_CLIENT is available', () => {
    const i = analysePgbouncer(NODE, ['Mallory'], snapshot124());
    expect(i.killClient).toBe(true);
    expect(i.clients.map((c) => c.id)).toEqual(['101', '102', '103']);
    expect(i.findings.map((f) => f.id)).not.toContain('pgbouncer.no_kill_client');
  });
});

describe('planPgbouncer', () => {
  it('1.18 default: RECONNECT the role’s own pool databases, KILL_CLIENT skipped with the version, no KILL run', () => {
    const plan = planPgbouncer(analysePgbouncer(NODE, ['Mallory'], snapshot118()), { killPool: false });
    expect(plan.map((a) => [a.command, a.skip === null])).toEqual([
      ['KILL_CLIENT <id>', false],
      ['RECONNECT "sales-Db"', true],
      ['RECONNECT "tx"', true],
      ['KILL "shared"', false],
    ]);
    expect(plan[0]!.skip).toBe('KILL_CLIENT needs PgBouncer >= 1.24.0; 1.18.0 here');
    expect(plan[0]!.target).toBe('3 clients of the role');
    expect(plan[1]!.reason).toMatch(/NOLOGIN/);
    expect(plan[1]!.reason).toMatch(/no client is disconnected/);
    expect(plan[3]!.skip).toMatch(
      /^--pgbouncer-kill-pool not given: KILL drops every client of shared, bystanders included \(1 now\); its pool logs in as shared user app_shared/,
    );
  });

  it('1.24 default: KILL_CLIENT per client id, RECONNECT own pools, nothing for the shared pool beyond its client', () => {
    const plan = planPgbouncer(analysePgbouncer(NODE, ['Mallory'], snapshot124()), { killPool: false });
    expect(plan.filter((a) => !a.skip).map((a) => a.command)).toEqual([
      'KILL_CLIENT 101',
      'KILL_CLIENT 102',
      'KILL_CLIENT 103',
      'RECONNECT "sales-Db"',
      'RECONNECT "tx"',
    ]);
    expect(plan.every((a) => a.skip === null)).toBe(true);
  });

  it('killPool: KILL then RESUME each database where the role has clients, saying how many bystanders it drops', () => {
    const plan = planPgbouncer(analysePgbouncer(NODE, ['Mallory'], snapshot118()), { killPool: true });
    expect(plan.map((a) => [a.command, a.skip, a.after])).toEqual([
      ['KILL "sales-Db"', null, null],
      ['RESUME "sales-Db"', null, 'KILL "sales-Db"'],
      ['KILL "shared"', null, null],
      ['RESUME "shared"', null, 'KILL "shared"'],
      ['KILL "tx"', null, null],
      ['RESUME "tx"', null, 'KILL "tx"'],
    ]);
    expect(plan[0]!.reason).toContain('the role’s 1 client and 2 other clients (bystanders)');
    expect(plan[2]!.reason).toMatch(/shared user app_shared, so the role can come back until PgBouncer’s auth refuses it/);
  });

  it('killPool: a database with only idle server connections of the role gets RECONNECT, never KILL; paused stays paused', () => {
    const s = snapshot118({
      clients: [sock('C', 'Mallory', 'sales-Db', 'active', '0xc1', '0x51'), sock('C', 'bob', 'tx', 'active', '0xc6')],
      servers: [sock('S', 'Mallory', 'sales-Db', 'active', '0x51', '0xc1'), sock('S', 'Mallory', 'tx', 'idle', '0x52')],
      databases: [db('sales-Db', null, '1'), db('tx')],
    });
    const plan = planPgbouncer(analysePgbouncer(NODE, ['Mallory'], s), { killPool: true });
    expect(plan.map((a) => [a.command, a.skip])).toEqual([
      ['RECONNECT "tx"', null],
      ['KILL "sales-Db"', null],
      ['RESUME "sales-Db"', 'sales-Db was already paused before the cutoff: left paused'],
    ]);
  });

  it('pools left behind with no client and no server of the role need nothing', () => {
    const s = snapshot118({ clients: [], servers: [], pools: [pool('sales-Db', 'Mallory')] });
    const i = analysePgbouncer(NODE, ['Mallory'], s);
    expect(i.pools).toHaveLength(1);
    expect(planPgbouncer(i, { killPool: true })).toEqual([]);
  });

  it('a name the console cannot address: RECONNECT everything (harmless), KILL skipped', () => {
    const long = 'l'.repeat(62);
    const s = snapshot118({
      clients: [sock('C', 'Mallory', long, 'active', '0xc1', '0x51')],
      servers: [sock('S', 'Mallory', long, 'active', '0x51', '0xc1')],
      databases: [db(long)],
    });
    const i = analysePgbouncer(NODE, ['Mallory'], s);
    expect(planPgbouncer(i, { killPool: false }).map((a) => [a.command, a.target])).toEqual([
      ['KILL_CLIENT <id>', '1 client of the role'],
      ['RECONNECT', 'every database'],
    ]);
    const kp = planPgbouncer(i, { killPool: true });
    expect(kp.map((a) => [a.command, a.skip !== null])).toEqual([
      ['KILL_CLIENT <id>', true],
      ['RECONNECT', false],
      ['KILL <db>', true],
    ]);
  });

  it('the role on the admin console: counted in the skipped KILL_CLIENT (1.18), cut by KILL_CLIENT (1.24)', () => {
    const extra = {
      clients: [sock('C', 'Mallory', 'pgbouncer', 'active', '0xe1')],
      servers: [],
      config: config({ admin_users: 'Mallory' }),
    };
    const old = analysePgbouncer(NODE, ['Mallory'], snapshot118(extra));
    expect(old.clients[0]!.console).toBe(true);
    expect(old.pools.map((p) => [p.database, p.roleClients])).toEqual([
      ['sales-Db', 0],
      ['tx', 0],
    ]);
    expect(planPgbouncer(old, { killPool: true }).map((a) => [a.command, a.target])).toEqual([
      ['KILL_CLIENT <id>', '1 client of the role'],
    ]);
    const s = snapshot118(extra);
    s.clients = s.clients.map((c) => ({ ...c, id: '9' }));
    const now = analysePgbouncer(NODE, ['Mallory'], { ...s, version: 'PgBouncer 1.25.2' });
    expect(planPgbouncer(now, { killPool: false }).map((a) => a.command)).toEqual(['KILL_CLIENT 9']);
  });
});

describe('summarisePgbouncer', () => {
  const done = (
    r: Omit<PgbouncerResult, 'status' | 'detail' | 'at'>,
    status: PgbouncerResult['status'] = 'done',
    detail: string | null = null,
  ): PgbouncerResult => ({
    ...r,
    status,
    detail,
    at: status === 'skipped' ? null : '2026-11-23T00:00:00.000Z',
  });

  it('says what was not done and why, what keeps the clients harmless, and the shared-user exposure', () => {
    const i = analysePgbouncer(NODE, ['Mallory'], snapshot118());
    const plan = planPgbouncer(i, { killPool: false });
    const results = plan.map((a) =>
      done({ kind: a.kind, command: a.command, target: a.target, database: a.database }, a.skip ? 'skipped' : 'done', a.skip),
    );
    const s = summarisePgbouncer(i, results);
    expect(s.exposed).toBe(true);
    expect(s.notDone).toEqual([
      'KILL_CLIENT <id> (3 clients of the role) not run: KILL_CLIENT needs PgBouncer >= 1.24.0; 1.18.0 here',
      expect.stringMatching(/^KILL "shared" \(database shared\) not run: --pgbouncer-kill-pool not given/),
      "2 clients of the role stay connected to pgbouncer 10.0.0.5:6432 (sales-Db, tx): they cannot run queries once PostgreSQL refuses the role's new server logins (NOLOGIN) and its server connections (pids 4081, 4082) are terminated; a query then waits for a server login and fails after query_wait_timeout (120 s here), which also disconnects the client",
      expect.stringMatching(
        /^database shared: the pool logs in to PostgreSQL as shared user app_shared.*auth_file \/etc\/pgbouncer\/userlist.txt.*RELOAD$/,
      ),
    ]);
    // only the shared-user pool leaves the role a way in: the skipped KILL_CLIENT alone does not
    expect(s.exposure).toEqual([s.notDone[3]]);
  });

  it('nothing exposed when the role only had its own pools and every command ran', () => {
    const s = snapshot118({
      clients: [sock('C', 'Mallory', 'tx', 'active', '0xc2')],
      servers: [sock('S', 'Mallory', 'tx', 'idle', '0x52')],
    });
    const i = analysePgbouncer(NODE, ['Mallory'], {
      ...s,
      version: 'PgBouncer 1.24.0',
      clients: s.clients.map((c) => ({ ...c, id: '5' })),
    });
    const results = planPgbouncer(i, { killPool: false }).map((a) =>
      done({ kind: a.kind, command: a.command, target: a.target, database: a.database }),
    );
    expect(results.map((r) => r.command)).toEqual(['KILL_CLIENT 5', 'RECONNECT "tx"']);
    expect(summarisePgbouncer(i, results)).toEqual({ notDone: [], exposed: false, exposure: [] });
  });

  it('failures are listed with their hint and make the node exposed', () => {
    const i = analysePgbouncer(NODE, ['Mallory'], snapshot118());
    const s = summarisePgbouncer(i, [
      {
        kind: 'reconnect',
        command: 'RECONNECT "tx"',
        target: 'database tx',
        database: 'tx',
        at: '2026-11-23T00:00:00.000Z',
        status: 'failed',
        detail: 'admin access needed',
        hint: 'needs admin_users',
      },
    ]);
    expect(s.exposed).toBe(true);
    expect(s.notDone[0]).toBe('RECONNECT "tx" (database tx) failed: admin access needed (needs admin_users)');
    expect(s.exposure[0]).toBe(s.notDone[0]);
  });
});

describe('applyPgbouncer without a console', () => {
  const plan = planPgbouncer(analysePgbouncer(NODE, ['Mallory'], snapshot118()), { killPool: true });

  it('dry run: planned and skipped, no connection attempted', async () => {
    const r = await applyPgbouncer('postgresql://a:pw@256.256.256.256:1/pgbouncer', plan, true, {});
    expect(r.map((x) => x.status)).toEqual(['planned', 'planned', 'planned', 'planned', 'planned', 'planned']);
  });

  it('console unreachable: KILLs fail with a readable error and no password, RESUMEs are not attempted', async () => {
    const port = await freePort();
    const r = await applyPgbouncer(`postgresql://pgb_admin:Hunter2-SECRET@127.0.0.1:${port}/pgbouncer`, plan, false, {});
    expect(r.map((x) => x.status)).toEqual(['failed', 'skipped', 'failed', 'skipped', 'failed', 'skipped']);
    expect(r[0]!.detail).toMatch(new RegExp(`could not open the console: pgbouncer 127.0.0.1:${port}: .*Connection refused`));
    expect(r[0]!.sqlstate).toBe('08001');
    expect(r[1]!.detail).toBe('not run: KILL "sales-Db" did not succeed');
    expect(JSON.stringify(r)).not.toContain('Hunter2-SECRET');
  });
});
