// inspect against staged compromises on real servers, run as a user would: the CLI as a subprocess.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { rejectBlock } from '../../src/playbook/hba-file.js';
import { MAJORS, parkLogin, reloadAndWait, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const HBA = [
  'local all all trust',
  'host all postgres 127.0.0.1/32 scram-sha-256',
  'host all all 127.0.0.1/32 scram-sha-256',
  'host all mallory 0.0.0.0/0 reject',
  'host all all ::1/128 scram-sha-256',
].join('\n');

const HOSTILE = `Robert'); DROP TABLE accounts;--`;
const UNICODE = `"Quoted" Ünï 𝔐`;

interface Json {
  [k: string]: unknown;
}

describe.each(MAJORS)('inspect on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let malloryPid = 0;
  let blockedPid = 0;
  let blockedByPreparedPid = 0;
  const hanging: pg.Client[] = [];

  const inspect = (role: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
    runCli(['inspect', role, '--dsn', cl.dsn(), ...extra], env);

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', HBA + '\n');
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm-pass'`);
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'a-pass'`);
    await cl.sql(`CREATE ROLE oncall LOGIN PASSWORD 'o-pass' IN ROLE pg_signal_backend`);
    await cl.sql(`CREATE ROLE "UPPER" LOGIN PASSWORD 'x'`);
    await cl.sql(`CREATE ROLE "upper" LOGIN PASSWORD 'x'`);
    await cl.sql(`CREATE ROLE ${'"' + HOSTILE.replace(/"/g, '""') + '"'} LOGIN PASSWORD 'h-pass'`);
    await cl.sql(`CREATE ROLE ${'"' + UNICODE.replace(/"/g, '""') + '"'} LOGIN PASSWORD 'u-pass'`);
    await cl.sql(`CREATE TABLE accounts (id int PRIMARY KEY, balance int)`);
    await cl.sql(`INSERT INTO accounts VALUES (1, 100), (2, 200)`);
    await cl.sql(`GRANT ALL ON accounts TO mallory, alice`);
    await cl.sql(`CREATE FUNCTION mallory_backdoor() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'`);
    await cl.sql(`ALTER FUNCTION mallory_backdoor() OWNER TO mallory`);

    // a session of mallory holding a row lock that blocks alice
    const m = await cl.connectAs('mallory', 'm-pass');
    malloryPid = (await m.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    await m.query('BEGIN');
    await m.query('SELECT * FROM accounts WHERE id = 1 FOR UPDATE');
    const a = await cl.connectAs('alice', 'a-pass');
    blockedPid = (await a.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    void a.query('UPDATE accounts SET balance = 0 WHERE id = 1').catch(() => undefined);

    // a prepared transaction of mallory holding a lock that blocks a second alice session
    const m2 = await cl.connectAs('mallory', 'm-pass');
    await m2.query('BEGIN');
    await m2.query('UPDATE accounts SET balance = 1 WHERE id = 2');
    await m2.query(`PREPARE TRANSACTION 'mal-1'`);
    const a2 = await cl.connectAs('alice', 'a-pass');
    blockedByPreparedPid = (await a2.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    void a2.query('UPDATE accounts SET balance = 0 WHERE id = 2').catch(() => undefined);

    // a backend held in the post-authentication window: authenticated, invisible in pg_stat_activity
    hanging.push((await parkLogin(cl, 'mallory', 'm-pass', 60)).client);

    await waitFor(
      async () =>
        (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`))[0]!.n >= 2,
    );
  });

  afterAll(async () => {
    for (const h of hanging) void h.end().catch(() => undefined);
    await cl?.sql(`ROLLBACK PREPARED 'mal-1'`).catch(() => undefined);
    await cl?.destroyAll();
  });

  it('reports the staged compromise of mallory as one JSON document, exit 0', async () => {
    const hiddenSeen = await waitFor(async () => {
      const r = await inspect('mallory', ['--json']);
      const doc = JSON.parse(r.stdout) as Json;
      return (doc.hiddenBackends as unknown[]).length > 0 ? { r, doc } : undefined;
    });
    const { r, doc } = hiddenSeen;
    expect(r.code).toBe(0);
    expect(Object.keys(doc)).toEqual(
      expect.arrayContaining([
        'schemaVersion',
        'role',
        'server',
        'verdict',
        'sessions',
        'hiddenBackends',
        'locks',
        'blocking',
        'preparedTransactions',
        'hba',
        'persistence',
        'operator',
        'findings',
      ]),
    );
    expect(doc.verdict).toBe('exposed');
    expect((doc.server as Json).major).toBe(major);
    const sessions = doc.sessions as Json[];
    expect(sessions.map((s) => s.pid)).toContain(malloryPid);
    expect(sessions.every((s) => s.user === 'mallory')).toBe(true);
    const ids = (doc.findings as Json[]).map((f) => f.id);
    for (const id of [
      'role.can_login',
      'sessions.active',
      'sessions.hidden',
      'locks.blocking',
      'prepared_xacts',
      'hba.not_rejected',
      'hba.reject_shadowed',
      'persistence.security_definer',
    ])
      expect(ids).toContain(id);
    expect(ids).not.toContain('operator.no_reserved_slot'); // postgres gets a superuser_reserved_connections slot
    const hidden = doc.hiddenBackends as Json[];
    expect(hidden[0]!.via).toBe(major >= 18 ? 'starting' : 'virtualxid');
    const blocking = doc.blocking as Json[];
    expect(blocking).toContainEqual(expect.objectContaining({ blockedPid, blockedUser: 'alice', blockerPid: malloryPid }));
    expect(blocking).toContainEqual(expect.objectContaining({ blockedPid: blockedByPreparedPid, blockerGid: 'mal-1' }));
    const prepared = doc.preparedTransactions as Json[];
    expect(prepared).toHaveLength(1);
    expect(prepared[0]).toMatchObject({ gid: 'mal-1', database: 'postgres' });
    expect(prepared[0]!.locks as number).toBeGreaterThan(0);
    const locks = doc.locks as Json[];
    // schema-qualified: pgrevoke's sessions run with search_path pg_catalog, whatever the database sets
    expect(locks.some((l) => l.pid === malloryPid && l.relation === 'public.accounts' && l.granted)).toBe(true);
    expect(locks.some((l) => l.preparedGid === 'mal-1')).toBe(true);
    const shadow = (doc.findings as Json[]).find((f) => f.id === 'hba.reject_shadowed')!;
    expect(shadow.detail).toMatch(/4/);
    expect(shadow.detail).toMatch(/3/);
    // no password in any output
    expect(r.stdout + r.stderr).not.toContain(cl.password);
    expect(r.stdout + r.stderr).not.toContain('m-pass');
  });

  it('prints tables, the verdict and remediation in text mode', async () => {
    const r = await inspect('mallory');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Role "mallory"');
    expect(r.stdout).toContain('EXPOSED');
    expect(r.stdout).toContain(String(malloryPid));
    expect(r.stdout).toContain('prepared_xacts');
    expect(r.stdout).toContain("ROLLBACK PREPARED 'mal-1'");
    expect(r.stdout).not.toContain('\u001b['); // NO_COLOR / not a TTY: no escape codes
  });

  it('leaves bystanders out and finds nothing on a quiet role', async () => {
    const r = await inspect('alice', ['--json']);
    const doc = JSON.parse(r.stdout) as Json;
    expect((doc.sessions as Json[]).map((s) => s.pid).sort()).toEqual([blockedPid, blockedByPreparedPid].sort());
    expect(doc.preparedTransactions).toEqual([]);
    expect(doc.blocking).toEqual([]);
  });

  it('handles hostile and unicode names exactly', async () => {
    for (const name of [HOSTILE, UNICODE]) {
      const r = await inspect(name, ['--json']);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as Json;
      expect((doc.role as Json).name).toBe(name);
    }
    expect(await cl.sql(`SELECT count(*)::int AS n FROM accounts`)).toEqual([{ n: 2 }]);
  });

  it('tells look-alike names apart and suggests near matches for an unknown one (exit 2)', async () => {
    const upper = JSON.parse((await inspect('UPPER', ['--json'])).stdout) as Json;
    const lower = JSON.parse((await inspect('upper', ['--json'])).stdout) as Json;
    expect((upper.role as Json).oid).not.toBe((lower.role as Json).oid);
    const r = await inspect('Upper');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('role "Upper" does not exist');
    expect(r.stderr).toContain('42704');
    expect(r.stderr).toMatch(/did you mean .*"UPPER".*"upper"|did you mean .*"upper".*"UPPER"/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace without --debug
  });

  it('works for an operator without superuser, saying what it cannot do', async () => {
    const r = await runCli(['inspect', 'mallory', '--json', '--dsn', cl.url('oncall', 'o-pass')]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Json;
    const ids = (doc.findings as Json[]).map((f) => f.id);
    expect(ids).toContain('hba.unreadable');
    expect(ids).toContain('operator.no_hba_access');
    expect(ids).toContain('operator.cannot_alter_role');
    expect(ids).toContain('operator.cannot_terminate_superuser');
    expect(ids).not.toContain('operator.cannot_signal'); // pg_signal_backend member
    // no superuser, no pg_use_reserved_connections: once mallory fills the server, oncall is out
    const slot = (doc.findings as Json[]).find((f) => f.id === 'operator.no_reserved_slot');
    expect(slot?.detail).toMatch(
      major >= 16 ? /oncall is neither a superuser nor a member of pg_use_reserved_connections/ : /oncall is not a superuser/,
    );
    expect(slot?.remediation).toContain('pgrevoke guard');
    expect((doc.hba as Json).readable).toBe(false);
    expect((doc.sessions as Json[]).map((s) => s.pid)).toContain(malloryPid);
  });

  it('fails cleanly with exit 2 on a wrong password, never echoing it', async () => {
    const r = await runCli(['inspect', 'mallory', '--dsn', cl.url('postgres', 'not-the-password-123')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('28P01');
    expect(r.stderr).toMatch(/hint:/);
    expect(r.stdout + r.stderr).not.toContain('not-the-password-123');
  });

  it('uses PG* environment variables like psql', async () => {
    const r = await runCli(['inspect', 'mallory', '--json'], {
      PGHOST: '127.0.0.1',
      PGPORT: String(cl.port),
      PGUSER: 'postgres',
      PGPASSWORD: cl.password,
      PGDATABASE: 'postgres',
    });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Json).verdict).toBe('exposed');
  });

  it('hba.not_rejected shows the very lines cutoff writes, one per line, quoted once; pasted where it says, they reject the role', async () => {
    const notRejected = (doc: Json) => (doc.findings as Json[]).find((f) => f.id === 'hba.not_rejected');
    // plain alice, in text mode: each line on its own, not wrapped in another pair of quotes
    const text = await inspect('alice');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/fix: Add these lines above line \d+ \(pg_hba\.conf is first-match; pgrevoke cutoff writes the same lines/);
    expect(text.stdout).toContain(
      '\n           local all,replication "alice" reject\n           host all,replication "alice" all reject\n',
    );
    expect(text.stdout).not.toMatch(/"(local|host) all|reject"/);

    const WEIRD = 'we"ird user';
    await cl.sql(`CREATE ROLE "we""ird user" LOGIN PASSWORD 'w-pass'`);
    const before = await inspect(WEIRD, ['--json']);
    expect(before.code, before.stderr).toBe(0);
    const fix = String(notRejected(JSON.parse(before.stdout) as Json)!.remediation).split('\n');
    const lines = fix.filter((l) => l.startsWith('  ')).map((l) => l.trim());
    // pg_hba.conf's own quoting (a quote doubled inside one pair), and cutoff's block holds exactly these
    expect(lines).toEqual(['local all,replication "we""ird user" reject', 'host all,replication "we""ird user" all reject']);
    expect(rejectBlock(WEIRD, new Date()).slice(1, -1)).toEqual(lines);

    // what a DBA does with it: paste above the line named, reload; the server then refuses the role
    const above = Number(/above line (\d+)/.exec(fix[0]!)![1]);
    const file = HBA.split('\n');
    file.splice(above - 1, 0, ...lines);
    await cl.writeDataFile('pg_hba.conf', file.join('\n') + '\n');
    await reloadAndWait(cl);
    expect(await cl.sql(`SELECT line_number FROM pg_hba_file_rules WHERE error IS NOT NULL`)).toEqual([]);
    for (const host of ['127.0.0.1', cl.socketDir]) {
      const c = new pg.Client({ host, port: cl.port, user: WEIRD, password: 'w-pass', database: 'postgres' });
      await expect(c.connect()).rejects.toThrow(/pg_hba\.conf rejects connection/);
    }
    const after = JSON.parse((await inspect(WEIRD, ['--json'])).stdout) as Json;
    expect(notRejected(after)).toBeUndefined();
  });
});

describe('connection errors', () => {
  it('an unreachable port is exit 2 with SQLSTATE 08001 and a hint', async () => {
    const r = await runCli(['inspect', 'x', '--dsn', 'postgresql://u:topsecret@127.0.0.1:1/postgres']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('08001');
    expect(r.stderr).toContain('Connection refused');
    expect(r.stderr).not.toContain('topsecret');
  });

  it('a bad DSN is exit 2 with a readable message', async () => {
    const r = await runCli(['inspect', 'x', '--dsn', 'host=a bogus_key=1 password=zzz']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid connection option "bogus_key"');
    expect(r.stderr).not.toContain('zzz');
  });

  it('a missing role argument is a usage error (exit 2)', async () => {
    const r = await runCli(['inspect']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing required argument 'role'");
  });

  it('--debug shows the stack trace, never the password', async () => {
    const r = await runCli(['inspect', 'x', '--debug', '--dsn', 'postgresql://u:topsecret@127.0.0.1:1/postgres']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/at .*:\d+/);
    expect(r.stderr).not.toContain('topsecret');
  });
});
