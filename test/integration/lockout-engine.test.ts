// The lockout engine (src/lockout/) against real servers: failed logins from several 127.0.0.0/8
// source addresses (a socket bound with localAddress, through pg's `stream` option), turned into
// AuthFailure objects as the log reader yields them, then checked with real logins: the pair
// refused while the role still gets in from elsewhere, NOLOGIN and the sessions ended in role mode
// and LOGIN back at the end, a ban refusing every role from the address (unknown names too),
// expiry, a restart, a hand-removed block, exclusions, a hostile state file, two engines at once,
// and cutoff's own block beside the lockout block.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BLOCK_BEGIN, blockRules } from '../../src/lockout/hba-block.js';
import type { EngineConfig } from '../../src/lockout/engine.js';
import { readLockouts, storePath } from '../../src/lockout/store.js';
import type { LockoutNode, LockoutPolicy } from '../../src/lockout/types.js';
import type { AuthFailure, AuthFailureKind } from '../../src/serverlog/types.js';
import { runCli } from '../helpers/cli.js';
import { canQuery, MAJORS, startCluster, startStandby, waitForReplay, type TestCluster } from '../helpers/cluster.js';
import { lockoutEngine, lockoutNode, loginFrom, storedLockout } from '../helpers/lockout.js';
import { waitFor } from '../helpers/wait.js';

const HBA =
  ['local all all trust', 'host all postgres 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n') + '\n';

/** A real failed login (wrong password) from `source`, and the AuthFailure the log reader makes of it. */
async function failFrom(cl: TestCluster, source: string, user: string, kind: AuthFailureKind = 'password'): Promise<AuthFailure> {
  const outcome = await loginFrom(cl, source, user, 'wrong-password');
  const expected = kind === 'hba_reject' ? '28000' : '28P01';
  if (outcome !== expected) throw new Error(`a failed login of ${user} from ${source} gave ${outcome}, not ${expected}`);
  return failure(user, source, kind);
}

function failure(user: string, address: string | null, kind: AuthFailureKind = 'password', at = new Date()): AuthFailure {
  return {
    at: at.toISOString(),
    user,
    database: 'postgres',
    address,
    sqlstate: kind === 'password' ? '28P01' : '28000',
    kind,
    message:
      kind === 'password'
        ? `password authentication failed for user "${user}"`
        : `pg_hba.conf rejects connection for host "${address}", user "${user}"`,
    hbaLine: null,
    pid: null,
  };
}

const fileRules = (cl: TestCluster) => blockRules(readFileSync(cl.hbaFile, 'utf8'));

describe.each(MAJORS)('lockout engine on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;
  let state: string;
  let env: NodeJS.ProcessEnv;
  let audit: string;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-lockout-'));

  const engine = (over: Partial<EngineConfig> = {}, policy: Partial<LockoutPolicy> = {}) =>
    lockoutEngine([node], env, policy, { auditLog: audit, ...over });
  const auditLines = () =>
    existsSync(audit)
      ? readFileSync(audit, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
  const refused = (source: string, user: string, password: string, code = '28000') =>
    waitFor(async () => (await loginFrom(cl, source, user, password)) === code, 10_000, `${user} from ${source} refused with ${code}`);
  const allowed = (source: string, user: string, password: string) =>
    waitFor(async () => (await loginFrom(cl, source, user, password)) === 'allow', 10_000, `${user} from ${source} let in`);

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    for (const r of ['alice', 'bob', 'carol', 'break_glass', 'mallory']) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD 'pw-${r}'`);
    ({ client, node } = await lockoutNode(cl));
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });
  beforeEach(async () => {
    state = mkdtempSync(path.join(tmp, 'state-'));
    env = { PGREVOKE_STATE_DIR: state };
    audit = path.join(state, 'audit.jsonl');
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(
      `ALTER ROLE alice LOGIN CONNECTION LIMIT -1; ALTER ROLE bob LOGIN; ALTER ROLE carol LOGIN CONNECTION LIMIT 7; ALTER ROLE mallory LOGIN CONNECTION LIMIT -1`,
    );
    await allowed('127.0.0.2', 'alice', 'pw-alice');
  });

  it('after N failures the (role, address) pair is refused; the role from another address, and another role from there, still get in', async () => {
    const e = engine();
    const failures = [
      await failFrom(cl, '127.0.0.2', 'alice'),
      await failFrom(cl, '127.0.0.2', 'alice'),
      await failFrom(cl, '127.0.0.3', 'alice'),
    ];
    expect(await e.ingest(failures)).toEqual([]);
    const [made] = await e.ingest([await failFrom(cl, '127.0.0.2', 'alice')]);
    expect(made).toMatchObject({ kind: 'address', role: 'alice', address: '127.0.0.2', count: 3, nodes: [node.name] });
    const events = await e.enforce();
    expect(events.map((x) => [x.event, x.node])).toEqual([['lockout', node.name]]);
    expect(events[0]!.detail).toMatch(/reloaded, checked in pg_hba_file_rules/);
    await refused('127.0.0.2', 'alice', 'pw-alice');
    expect(await loginFrom(cl, '127.0.0.3', 'alice', 'pw-alice')).toBe('allow');
    expect(await loginFrom(cl, '127.0.0.2', 'bob', 'pw-bob')).toBe('allow');
    // the server reads the line as written, at the top, without error
    const rows = await cl.sql<{ line_number: number; user_name: string[]; address: string; auth_method: string; error: string | null }>(
      `SELECT line_number, user_name, address, auth_method, error FROM pg_hba_file_rules ORDER BY line_number LIMIT 1`,
    );
    expect(rows).toEqual([{ line_number: 2, user_name: ['alice'], address: '127.0.0.2', auth_method: 'reject', error: null }]);
    expect((await readLockouts(env))[0]!.applied).toEqual([node.name]);
    expect(auditLines()).toMatchObject([
      {
        node: node.name,
        target: 'alice',
        action: 'hba_reject',
        reason: 'lockout',
        address: '127.0.0.2',
        count: 3,
        operator: { dbUser: 'postgres', osUser: 'test' },
      },
    ]);

    // still knocking: counted on the lockout, never extending it
    const until = made!.until;
    await e.ingest([await failFrom(cl, '127.0.0.2', 'alice', 'hba_reject'), await failFrom(cl, '127.0.0.2', 'alice', 'hba_reject')]);
    // knocks alone are written at most every KNOCK_WRITE_MS, and at flush (guard's stop)
    expect((await readLockouts(env))[0]!.knocks).toBe(0);
    await e.flush();
    const [after] = await readLockouts(env);
    expect(after).toMatchObject({ id: made!.id, until, knocks: 2 });
    expect(await e.enforce()).toEqual([]);
  });

  it('a new engine (a restart) keeps the lockout; a block removed by hand is put back', async () => {
    const first = engine();
    await first.ingest([failure('alice', '127.0.0.2'), failure('alice', '127.0.0.2'), failure('alice', '127.0.0.2')]);
    await first.enforce();
    await refused('127.0.0.2', 'alice', 'pw-alice');
    const second = engine();
    expect(await second.enforce()).toEqual([]);
    expect(second.lockouts().map((l) => [l.role, l.address])).toEqual([['alice', '127.0.0.2']]);
    // someone takes our block out and reloads
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await allowed('127.0.0.2', 'alice', 'pw-alice');
    const third = engine();
    const events = await third.enforce();
    expect(events.map((x) => x.event)).toEqual(['reapplied']);
    await refused('127.0.0.2', 'alice', 'pw-alice');
    expect(auditLines().map((l) => l.action)).toEqual(['hba_reject', 'hba_reject_again']);
  });

  it('expires by itself: the line removed, the reload checked, the role back in from that address, the state emptied', async () => {
    const e = engine();
    const [made] = await e.ingest([failure('alice', '127.0.0.2'), failure('alice', '127.0.0.2'), failure('alice', '127.0.0.2')]);
    await e.enforce();
    await refused('127.0.0.2', 'alice', 'pw-alice');
    const events = await e.enforce(new Date(Date.parse(made!.until) + 1));
    expect(events.map((x) => x.event)).toEqual(['expired']);
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
    await allowed('127.0.0.2', 'alice', 'pw-alice');
    expect(await readLockouts(env)).toEqual([]);
    expect(auditLines().map((l) => [l.action, l.reason, l.address, l.count])).toEqual([
      ['hba_reject', 'lockout', '127.0.0.2', 3],
      ['hba_remove', 'lockout_expired', '127.0.0.2', 3],
    ]);
  });

  it('a ban refuses every role from the address, unknown names included; other addresses still get in', async () => {
    const e = engine({}, { banAddressAfter: 4 });
    const failures = [
      await failFrom(cl, '127.0.0.4', 'ghost1', 'role_missing'),
      await failFrom(cl, '127.0.0.4', 'ghost2', 'role_missing'),
      await failFrom(cl, '127.0.0.4', 'alice'),
      await failFrom(cl, '127.0.0.4', 'bob'),
    ];
    const made = await e.ingest(failures);
    expect(made.map((l) => [l.kind, l.role, l.address, l.count])).toEqual([['address_ban', null, '127.0.0.4', 4]]);
    await e.enforce();
    await refused('127.0.0.4', 'alice', 'pw-alice');
    expect(await loginFrom(cl, '127.0.0.4', 'bob', 'pw-bob')).toBe('28000');
    // an unknown name is told "pg_hba.conf rejects", not "password authentication failed" (28P01)
    expect(await loginFrom(cl, '127.0.0.4', 'nobody', 'x')).toBe('28000');
    expect(await loginFrom(cl, '127.0.0.5', 'alice', 'pw-alice')).toBe('allow');
    expect(auditLines()).toMatchObject([{ target: '', reason: 'address_ban', address: '127.0.0.4', count: 4 }]);
  });

  it('writes IPv6 lockouts as /128 lines the server reads without error', async () => {
    const e = engine({}, { banAddressAfter: 3 });
    await e.ingest([failure('alice', '2001:db8::5'), failure('bob', '2001:db8::5'), failure('alice', '2001:db8::5')]);
    await e.enforce();
    const rows = await cl.sql<{ address: string; netmask: string; error: string | null }>(
      `SELECT address, netmask, error FROM pg_hba_file_rules WHERE auth_method = 'reject'`,
    );
    expect(rows).toEqual([{ address: '2001:db8::5', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', error: null }]);
  });

  it('never locks excluded roles or addresses, nor its own login role from its own address; another role from there it does', async () => {
    const e = engine({}, { excludeRoles: ['break_glass'], excludeAddresses: ['127.0.0.6/32'], banAddressAfter: 3 });
    const fs = [];
    for (let i = 0; i < 3; i++) fs.push(await failFrom(cl, '127.0.0.2', 'break_glass'), await failFrom(cl, '127.0.0.6', 'alice'));
    // the engine logs in as postgres from 127.0.0.1
    fs.push(...[1, 2, 3].map(() => failure('postgres', '127.0.0.1')));
    expect(await e.ingest(fs)).toEqual([]);
    expect(await e.enforce()).toEqual([]);
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
    // a local client (dblink on the server) guessing alice's password: the engine's address is no exemption
    const made = await e.ingest([1, 2, 3].map(() => failure('alice', '127.0.0.1')));
    expect(made.map((l) => [l.role, l.address])).toEqual([['alice', '127.0.0.1']]);
  });

  it('role mode: NOLOGIN and its sessions ended; LOGIN and the connection limit back at the end; a role NOLOGIN before stays so', async () => {
    const e = engine({}, { by: 'role' });
    const session = await cl.connectAs('carol', 'pw-carol');
    const [made] = await e.ingest([
      await failFrom(cl, '127.0.0.2', 'carol'),
      await failFrom(cl, '127.0.0.3', 'carol'),
      await failFrom(cl, '127.0.0.4', 'carol'),
    ]);
    expect(made).toMatchObject({ kind: 'role', role: 'carol', address: null });
    const events = await e.enforce();
    expect(events.map((x) => x.event)).toEqual(['lockout']);
    expect(events[0]!.detail).toMatch(/NOLOGIN set; 1 session\(s\) ended/);
    expect(await cl.sql('SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1', ['carol'])).toEqual([
      { rolcanlogin: false, rolconnlimit: 0 },
    ]);
    await waitFor(async () => !(await canQuery(session)), 5000, "carol's session ended");
    expect(await loginFrom(cl, '127.0.0.5', 'carol', 'pw-carol')).toBe('28000');
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
    // LOGIN turned back on by hand during the lockout: put back off at the next check
    await cl.sql('ALTER ROLE carol LOGIN');
    expect((await e.enforce(new Date(Date.now() + 2000))).map((x) => x.event)).toEqual(['reapplied']);
    expect(await cl.sql('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', ['carol'])).toEqual([{ rolcanlogin: false }]);
    const end = await e.enforce(new Date(Date.parse(made!.until) + 1));
    expect(end.map((x) => [x.event, x.detail])).toEqual([['expired', 'LOGIN given back (connection limit 7)']]);
    expect(await cl.sql('SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1', ['carol'])).toEqual([
      { rolcanlogin: true, rolconnlimit: 7 },
    ]);
    expect(await loginFrom(cl, '127.0.0.5', 'carol', 'pw-carol')).toBe('allow');
    expect(auditLines().map((l) => [l.action, l.reason])).toEqual([
      ['nologin', 'lockout'],
      ['nologin_again', 'lockout'],
      ['login_restored', 'lockout_expired'],
    ]);

    // a role that was NOLOGIN before the lockout never gets LOGIN from it
    await cl.sql('ALTER ROLE bob NOLOGIN');
    const [nb] = await e.ingest([failure('bob', '127.0.0.2'), failure('bob', '127.0.0.2'), failure('bob', '127.0.0.2')]);
    await e.enforce();
    const kept = await e.enforce(new Date(Date.parse(nb!.until) + 1));
    expect(kept.map((x) => [x.event, x.detail])).toEqual([
      ['login_kept', 'LOGIN not given back: it could not log in before the lockout: NOLOGIN stays as it was'],
    ]);
    expect(await cl.sql('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', ['bob'])).toEqual([{ rolcanlogin: false }]);
  });

  it('role mode: a cutoff of the role during the lockout is never undone at its end', async () => {
    const e = engine({}, { by: 'role' });
    const [made] = await e.ingest([failure('mallory', '127.0.0.2'), failure('mallory', '127.0.0.2'), failure('mallory', '127.0.0.2')]);
    await e.enforce();
    const cut = await runCli(['cutoff', 'mallory', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn()], env, {
      timeoutMs: 90_000,
    });
    expect(cut.code, cut.stderr).toBe(0);
    const end = await e.enforce(new Date(Date.parse(made!.until) + 1));
    expect(end.map((x) => x.event)).toEqual(['login_kept']);
    expect(end[0]!.detail).toMatch(/cutoff/);
    expect(await cl.sql('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', ['mallory'])).toEqual([{ rolcanlogin: false }]);
    const restore = await runCli(['restore', 'mallory', '--yes', '--json', '--dsn', cl.dsn()], env, { timeoutMs: 90_000 });
    expect(restore.code, restore.stderr).toBe(0);
  });

  it("cutoff's block and the lockout block coexist: neither's edit removes the other's lines", async () => {
    const e = engine();
    const [made] = await e.ingest([failure('alice', '127.0.0.2'), failure('alice', '127.0.0.2'), failure('alice', '127.0.0.2')]);
    await e.enforce();
    const cut = await runCli(['cutoff', 'mallory', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn()], env, {
      timeoutMs: 90_000,
    });
    expect(cut.code, cut.stderr).toBe(0);
    const both = readFileSync(cl.hbaFile, 'utf8');
    expect(both).toContain('# pgrevoke cutoff BEGIN "mallory"');
    expect(blockRules(both).map((r) => r.id)).toEqual([made!.id]);
    expect(await e.enforce()).toEqual([]); // cutoff's block above ours: harmless, no edit
    await refused('127.0.0.2', 'alice', 'pw-alice');
    await refused('127.0.0.3', 'mallory', 'pw-mallory');
    // the lockout ends: cutoff's block stays
    await e.enforce(new Date(Date.parse(made!.until) + 1));
    const after = readFileSync(cl.hbaFile, 'utf8');
    expect(after).toContain('# pgrevoke cutoff BEGIN "mallory"');
    expect(after).not.toContain(BLOCK_BEGIN);
    await allowed('127.0.0.2', 'alice', 'pw-alice');
    await refused('127.0.0.3', 'mallory', 'pw-mallory');
    // a new lockout, then cutoff's restore: the lockout stays
    const [again] = await e.ingest([failure('bob', '127.0.0.2'), failure('bob', '127.0.0.2'), failure('bob', '127.0.0.2')]);
    await e.enforce();
    const restore = await runCli(['restore', 'mallory', '--yes', '--json', '--dsn', cl.dsn()], env, { timeoutMs: 90_000 });
    expect(restore.code, restore.stderr).toBe(0);
    expect(blockRules(readFileSync(cl.hbaFile, 'utf8')).map((r) => r.id)).toEqual([again!.id]);
    expect(readFileSync(cl.hbaFile, 'utf8')).not.toContain('pgrevoke cutoff');
    await refused('127.0.0.2', 'bob', 'pw-bob');
    await allowed('127.0.0.2', 'mallory', 'pw-mallory');
  });

  it('a hostile lockouts.json is refused in one line, and nothing is written', async () => {
    writeFileSync(
      storePath(env),
      JSON.stringify({
        schemaVersion: 1,
        lockouts: [
          storedLockout({
            role: 'x\nhost all all 0.0.0.0/0 trust',
            count: 1,
            since: new Date().toISOString(),
            until: new Date(Date.now() + 60_000).toISOString(),
            nodes: [node.name],
            reason: '',
          }),
        ],
      }),
      { mode: 0o600 },
    );
    const e = engine();
    const err = await e.enforce().catch((x: Error) => x);
    expect(String((err as Error).message)).toMatch(
      /^refusing the lockout state .*lockouts\.json: lockouts\[0\]\.role: role name refused: it contains a line break; nothing was changed$/,
    );
    await expect(e.ingest([failure('alice', '127.0.0.2')])).rejects.toThrow(/refusing the lockout state/);
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
  });

  it("two engines at once, one state directory or two, never lose each other's lines", async () => {
    const otherState = mkdtempSync(path.join(tmp, 'state-other-'));
    const a = engine();
    const b = engine();
    const c = engine({ env: { PGREVOKE_STATE_DIR: otherState } });
    const three = (user: string, addr: string) => [failure(user, addr), failure(user, addr), failure(user, addr)];
    for (let round = 0; round < 5; round++) {
      const src = (n: number) => `127.0.${round + 10}.${n}`;
      await Promise.all([a.ingest(three('alice', src(1))), b.ingest(three('bob', src(2))), c.ingest(three('carol', src(3)))]);
      await Promise.all([a.enforce(), b.enforce(), c.enforce()]);
    }
    const rules = fileRules(cl);
    expect(rules).toHaveLength(15);
    // the other state directory's lockouts are foreign to the first's engines, and kept while they run
    expect(await a.enforce()).toEqual([]);
    expect(fileRules(cl)).toHaveLength(15);
    const ours = (await readLockouts(env)).map((l) => l.id).sort();
    expect(ours).toHaveLength(10);
    expect(
      rules
        .map((r) => r.id)
        .filter((id) => ours.includes(id))
        .sort(),
    ).toEqual(ours);
    const server = await cl.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_hba_file_rules WHERE auth_method = 'reject' AND error IS NULL`,
    );
    expect(server).toEqual([{ n: 15 }]);
  });
});

describe.each(MAJORS)('lockout engine over a primary and its standby on PostgreSQL %i', (major) => {
  let primary: TestCluster;
  let standby: TestCluster;
  const clients: pg.Client[] = [];
  let nodes: LockoutNode[];
  const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-lockout-fleet-')) };

  beforeAll(async () => {
    primary = await startCluster(major);
    standby = await startStandby(primary);
    await primary.writeDataFile('pg_hba.conf', HBA + 'host replication all 127.0.0.1/32 scram-sha-256\n');
    await primary.sql('SELECT pg_reload_conf()');
    await primary.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw-alice'`);
    await standby.writeDataFile('pg_hba.conf', HBA);
    await standby.sql('SELECT pg_reload_conf()');
    await waitForReplay(primary, standby);
    nodes = await Promise.all(
      [primary, standby].map(async (cl, i) => {
        const { client, node } = await lockoutNode(cl);
        clients.push(client);
        return { ...node, name: i === 0 ? 'db1' : 'db1-replica' };
      }),
    );
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await standby?.destroyAll();
    await primary?.destroyAll();
  });

  it('failures on the standby lock the pair on every node of the cluster', async () => {
    const e = lockoutEngine(nodes, env);
    const fs = [];
    for (let i = 0; i < 3; i++) fs.push(await failFrom(standby, '127.0.0.2', 'alice'));
    await e.ingest(fs);
    const events = await e.enforce();
    expect(events.map((x) => [x.event, x.node]).sort()).toEqual([
      ['lockout', 'db1'],
      ['lockout', 'db1-replica'],
    ]);
    for (const cl of [primary, standby]) {
      await waitFor(async () => (await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')) === '28000', 10_000, 'refused');
      expect(await loginFrom(cl, '127.0.0.3', 'alice', 'pw-alice')).toBe('allow');
    }
    expect((await readLockouts(env))[0]!.applied.sort()).toEqual(['db1', 'db1-replica']);
  });
});
