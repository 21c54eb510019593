// The guard library without a server: what it reports (once per session), what it audits, how it
// backs off and reconnects, what is fatal at start, deny-file reloads, and how events render.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chalk } from 'chalk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../src/errors.js';
import { backoffDelay, Guard, type GuardClient, type GuardConfig, type GuardEvent } from '../../src/guard/index.js';
import { GUARD_SETUP, NO_TIMEOUTS, type GuardPreparedRow, type GuardRow, type GuardUnblockRow } from '../../src/guard/sql.js';
import type { ConnParams } from '../../src/pg/conninfo.js';
import { guardJson, guardLine, guardStatus } from '../../src/report/guard.js';

const PARAMS: ConnParams = {
  host: 'h',
  port: 5432,
  user: 'postgres',
  database: 'postgres',
  connectTimeout: 1,
  applicationName: 'pgrevoke-guard',
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function row(over: Partial<GuardRow> = {}): GuardRow {
  return {
    pid: 101,
    role: 'mallory',
    usesysid: '16384',
    database: 'app',
    client: '10.0.0.5:50000',
    application: 'psql',
    backend_type: 'client backend',
    state: 'idle',
    backend_start: '2026-11-23 20:00:00+00',
    query: 'SELECT * FROM secrets',
    reason: 'role_nologin',
    valid_until: null,
    idle_seconds: 1,
    limit_seconds: null,
    limit_source: null,
    may_signal: true,
    terminated: true,
    role_key: '16384:login:mallory',
    ...over,
  };
}

/** A fake server: scripted tick results, scripted connect failures, and a record of statements. */
class FakeServer {
  ticks: (GuardRow[] | Error)[] = [];
  /** Answers to the unblock statement (the first one is its preparation at connect). */
  unblocks: (GuardUnblockRow[] | Error)[] = [];
  /** Answers to the prepared-transactions statement (the first one is its preparation at connect). */
  prepared: (GuardPreparedRow[] | Error)[] = [];
  /** null: that connect succeeds. */
  connectFailures: (Error | null)[] = [];
  connects = 0;
  statements: { name?: string; text: string; values?: unknown[] }[] = [];
  ended = 0;
  /** Fires the 'error' event of the live connection, as pg does when the server ends it between statements. */
  fail: (err: Error) => void = () => undefined;

  connect = async (): Promise<GuardClient> => {
    const f = this.connectFailures.shift();
    if (f) throw f;
    this.connects++;
    return {
      query: async <R extends object>(c: { name?: string; text: string; values?: unknown[] }) => {
        this.statements.push(c);
        if (c.text === GUARD_SETUP)
          return {
            rows: [
              { user: 'postgres', version: '18.4', standby: false, superuser: true, signal_backend: true, read_all_stats: true },
            ] as unknown as R[],
          };
        if (c.name?.startsWith('pgrevoke_guard_unblock')) {
          const u = this.unblocks.shift() ?? [];
          if (u instanceof Error) throw u;
          return { rows: u as unknown as R[] };
        }
        if (c.name === 'pgrevoke_guard_prepared') {
          const p = this.prepared.shift() ?? [];
          if (p instanceof Error) throw p;
          return { rows: p as unknown as R[] };
        }
        if (c.text.startsWith('ROLLBACK PREPARED')) return { rows: [] };
        const next = this.ticks.shift() ?? [];
        if (next instanceof Error) throw next;
        return { rows: next as unknown as R[] };
      },
      end: async () => {
        this.ended++;
      },
      on: (_event: 'error', listener: (err: Error) => void) => {
        this.fail = listener;
      },
    };
  };
}

let dir = '';
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-unit-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function config(server: FakeServer, over: Partial<GuardConfig> = {}): GuardConfig {
  return {
    nodes: [{ name: 'h:5432', params: PARAMS }],
    deny: [],
    denyFile: null,
    exclude: [],
    idle: NO_TIMEOUTS,
    idleInTransaction: NO_TIMEOUTS,
    intervalMs: 10,
    dryRun: false,
    auditLog: null,
    operator: { osUser: 'ops', host: 'bastion' },
    backoff: { minMs: 1, maxMs: 4 },
    connect: server.connect,
    ...over,
  };
}

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

describe('Guard', () => {
  it('reports and audits a kill once, even when a backend still exiting is signalled again', async () => {
    const server = new FakeServer();
    const audit = path.join(dir, 'audit.log');
    server.ticks = [[row()], [row()], [], [row({ pid: 102, reason: 'denylisted', role: 'eve' })]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { auditLog: audit }), (e) => events.push(e));
    await g.init();
    const running = g.run();
    await until(() => server.ticks.length === 0);
    await g.stop();
    await running;
    const kills = events.filter((e) => e.type === 'kill');
    expect(kills.map((e) => (e.type === 'kill' ? [e.kill.pid, e.kill.reason, e.kill.terminated] : null))).toEqual([
      [101, 'role_nologin', true],
      [102, 'denylisted', true],
    ]);
    const lines = (await fs.readFile(audit, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      node: 'h:5432',
      operator: { dbUser: 'postgres', osUser: 'ops', host: 'bastion' },
      target: 'mallory',
      action: 'terminate',
      reason: 'role_nologin',
      result: 'done',
      detail: 'role has NOLOGIN',
      session: {
        pid: 101,
        user: 'mallory',
        usesysid: 16384,
        database: 'app',
        client: '10.0.0.5:50000',
        application: 'psql',
        query: 'SELECT * FROM secrets',
      },
    });
    expect(typeof lines[0].time).toBe('string');
    expect((await fs.stat(audit)).mode & 0o777).toBe(0o600);
    // the connection was closed on stop
    expect(server.ended).toBe(1);
  });

  it('dry run: reports each session once per reason, audits nothing, runs the dry statement', async () => {
    const server = new FakeServer();
    const audit = path.join(dir, 'audit.log');
    const dry = { terminated: false };
    server.ticks = [[row(dry)], [row(dry)], [row({ ...dry, reason: 'role_expired', valid_until: '2000-01-01 00:00:00+00' })]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { dryRun: true, auditLog: audit }), (e) => events.push(e));
    await g.init();
    const running = g.run();
    await until(() => server.ticks.length === 0);
    await g.stop();
    await running;
    const kills = events.flatMap((e) => (e.type === 'kill' ? [e.kill] : []));
    expect(kills.map((k) => [k.reason, k.dryRun, k.terminated])).toEqual([
      ['role_nologin', true, false],
      ['role_expired', true, false],
    ]);
    expect(kills[1]!.detail).toBe('role VALID UNTIL 2000-01-01 00:00:00+00 has passed');
    // checked before the start, not created: a dry run does not even open it
    await expect(fs.access(audit)).rejects.toThrow(/ENOENT/);
    expect(
      server.statements
        .filter((s) => s.name)
        .every(
          (s) =>
            ['pgrevoke_guard_tick_dry', 'pgrevoke_guard_unblock_dry', 'pgrevoke_guard_prepared'].includes(s.name!) &&
            !s.text.includes('pg_terminate_backend'),
        ),
    ).toBe(true);
  });

  it('a session it may not signal is reported once as denied; one gone before the signal is not reported', async () => {
    const server = new FakeServer();
    const audit = path.join(dir, 'audit.log');
    const su = row({ pid: 7, role: 'root2', may_signal: false, terminated: false });
    server.ticks = [[su, row({ pid: 8, terminated: false })], [su]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { auditLog: audit }), (e) => events.push(e));
    await g.init();
    const running = g.run();
    await until(() => server.ticks.length === 0);
    await g.stop();
    await running;
    expect(events.filter((e) => e.type === 'kill')).toEqual([]);
    const denied = events.filter((e) => e.type === 'denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]!.type === 'denied' && denied[0]!.message).toMatch(/permission denied/);
    const lines = (await fs.readFile(audit, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.session.pid, l.result])).toEqual([[7, 'denied']]);
  });

  it('retries with exponential backoff while the server is away, then keeps guarding', async () => {
    const server = new FakeServer();
    const refused = () => new PgrevokeError('could not connect: connection refused', { sqlstate: '08001' });
    server.connectFailures = [refused(), refused(), refused(), refused()];
    const lost = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    server.ticks = [[], lost, [row()]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server), (e) => events.push(e));
    const running = g.run();
    await until(() => events.some((e) => e.type === 'kill'));
    await g.stop();
    await running;
    const retries = events.flatMap((e) => (e.type === 'reconnecting' ? [[e.lost, e.delayMs, e.attempt]] : []));
    expect(retries).toEqual([
      [false, 1, 1],
      [false, 2, 2],
      [false, 4, 3],
      [false, 4, 4],
      [true, 1, 1],
    ]);
    const connected = events.flatMap((e) => (e.type === 'connected' ? [e.afterFailures] : []));
    expect(connected).toEqual([4, 1]);
    expect(events.find((e) => e.type === 'reconnecting' && e.lost)).toMatchObject({ error: expect.stringContaining('[SQLSTATE 57P01]') });
    expect(backoffDelay(0)).toBe(100);
    expect([1, 2, 3, 4, 5, 6, 10].map((a) => backoffDelay(a))).toEqual([200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('says what ended the connection, not the "not queryable" error of the next statement', async () => {
    const server = new FakeServer();
    server.ticks = [[], new Error('Client has encountered a connection error and is not queryable')];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { intervalMs: 50 }), (e) => events.push(e));
    const running = g.run();
    await until(() => server.statements.length >= 2);
    server.fail(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));
    await until(() => events.some((e) => e.type === 'reconnecting'));
    await g.stop();
    await running;
    expect(events.find((e) => e.type === 'reconnecting')).toMatchObject({
      lost: true,
      error: 'terminating connection due to administrator command [SQLSTATE 57P01]',
    });
  });

  it('a bad password or unknown database before the first connection is fatal; after it, transient', async () => {
    const bad = new PgrevokeError('password authentication failed for user "postgres"', { sqlstate: '28P01' });
    const server = new FakeServer();
    server.connectFailures = [bad];
    const g = new Guard(config(server), () => undefined);
    await expect(g.run()).rejects.toBe(bad);

    const later = new FakeServer();
    later.ticks = [new Error('Connection terminated unexpectedly')];
    later.connectFailures = [null, new PgrevokeError('password authentication failed', { sqlstate: '28P01' })];
    const events: GuardEvent[] = [];
    const g2 = new Guard(config(later), (e) => events.push(e));
    const running = g2.run();
    await until(() => events.filter((e) => e.type === 'connected').length === 2);
    await g2.stop();
    await expect(running).resolves.toBeUndefined();
    expect(events.filter((e) => e.type === 'reconnecting').map((e) => e.type === 'reconnecting' && e.error)).toEqual([
      'Connection terminated unexpectedly',
      'password authentication failed [SQLSTATE 28P01]',
    ]);
  });

  it('a tick failing while connected is blind, not a lost connection: said once with its SQLSTATE, exit 3 past maxBlindMs', async () => {
    const server = new FakeServer();
    const denied = () =>
      Object.assign(new Error('permission denied for function pg_terminate_backend'), { code: '42501', severity: 'ERROR' });
    server.ticks = [[], ...Array.from({ length: 10_000 }, denied)];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { maxBlindMs: 150 }), (e) => events.push(e));
    const err = (await g.run().catch((e: unknown) => e)) as PgrevokeError;
    expect(err).toBeInstanceOf(PgrevokeError);
    expect(err.exitCode).toBe(3);
    expect(err.sqlstate).toBe('42501');
    expect(err.message).toMatch(
      /^h:5432: blind for [\d.]+ s \(--max-blind 0\.15\): every tick fails: permission denied for function pg_terminate_backend$/,
    );
    // the connection was kept all along (and closed at the end)
    expect(server.connects).toBe(1);
    expect(server.ended).toBe(1);
    expect(events.filter((e) => e.type === 'reconnecting')).toEqual([]);
    const said = events.flatMap((e) => (e.type === 'error' ? [e.message] : []));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(
      /^tick failed \(connection kept, retrying every 10 ms; exits 3 after 0\.15 s of this \(--max-blind\)\): .*\[SQLSTATE 42501\]$/,
    );
  });

  it('a blind node that recovers says so and goes on; maxBlindMs 0 never exits', async () => {
    const server = new FakeServer();
    const boom = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014', severity: 'ERROR' });
    server.ticks = [boom, boom, boom, [row()]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { maxBlindMs: 0 }), (e) => events.push(e));
    const running = g.run();
    await until(() => events.some((e) => e.type === 'kill'));
    await g.stop();
    await running;
    expect(events.find((e) => e.type === 'info')).toMatchObject({
      node: 'h:5432',
      message: expect.stringMatching(/^tick works again after [\d.]+ s$/),
    });
    expect(server.connects).toBe(1);
  });

  /** A session holding AccessExclusiveLock on pg_authid, as guardUnblock lists it. */
  const holderRow = (over: Partial<GuardUnblockRow> = {}): GuardUnblockRow => ({
    pid: 50,
    usesysid: '16390',
    client: 'local',
    application: 'psql',
    backend_type: 'client backend',
    state: 'idle in transaction',
    backend_start: null,
    query: 'LOCK TABLE pg_authid IN ACCESS EXCLUSIVE MODE',
    locks: ['AccessExclusiveLock on relation 1260'],
    terminated: true,
    ...over,
  });

  it('a tick blocked by a lock ends the holder whose role it remembers as denied, without reconnecting, then carries on', async () => {
    const server = new FakeServer();
    const lock = Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03', severity: 'ERROR' });
    // the role is seen (a row without a reason) before the lock, then every tick times out on it
    const sighting = row({ pid: 50, role: 'evil', usesysid: '16390', reason: null, terminated: false, role_key: '16390:login+super:evil' });
    server.ticks = [[sighting], lock, lock, []];
    const holder = holderRow({ client: '10.0.0.9:4000', backend_start: '2026-11-23 20:00:00+00' });
    const stranger = { ...holder, pid: 60, usesysid: '17000', terminated: false, locks: ['AccessShareLock on relation 1262'] };
    server.unblocks = [[], [stranger], [holder, stranger]];
    const file = path.join(dir, 'deny');
    await fs.writeFile(file, '');
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { denyFile: file }), (e) => events.push(e));
    await g.init();
    const running = g.run();
    // the first blocked tick: nothing denied yet; then the role is denied (SIGHUP), the next one ends it
    await until(() => events.some((e) => e.type === 'error'));
    await fs.writeFile(file, 'evil\n');
    await g.reload('signal');
    await until(() => events.some((e) => e.type === 'info'));
    await g.stop();
    await running;
    const unblocks = server.statements.filter((s) => s.name === 'pgrevoke_guard_unblock').map((s) => s.values);
    expect(unblocks).toEqual([[[]], [[]], [['16390']]]);
    const kills = events.flatMap((e) => (e.type === 'kill' ? [e.kill] : []));
    expect(kills).toEqual([
      expect.objectContaining({ pid: 50, role: 'evil', usesysid: 16390, reason: 'denylisted', terminated: true, database: null }),
    ]);
    expect(kills[0]!.detail).toBe("role is on the deny list; it held AccessExclusiveLock on pg_authid, which blocked the guard's tick");
    const errors = events.flatMap((e) => (e.type === 'error' ? [e.message] : []));
    expect(errors[0]).toMatch(
      /^tick blocked by a lock \(lock_timeout 100 ms, SQLSTATE 55P03\); sessions holding catalog locks: pid 60 \(oid 17000, a role unknown to the guard/,
    );
    expect(errors[1]).toContain('pid 50 (role "evil", oid 16390, superuser): AccessExclusiveLock on pg_authid: ended');
    expect(errors[1]).toContain(
      'pid 60 (oid 17000, a role unknown to the guard: no session of it seen and not a deny-listed role before the lock): AccessShareLock on pg_database: left alone',
    );
    expect(errors.join('\n')).not.toContain('not revoked nor denied');
    expect(events.filter((e) => e.type === 'reconnecting')).toEqual([]);
    expect(server.connects).toBe(1);
  });

  const lockTimeout = () => Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03', severity: 'ERROR' });
  /** A role seen once (a row without a reason: a session, or a deny-listed role without one, pid null). */
  const sighting = (oid: string, name: string, pid: number | null = null) =>
    row({ pid, role: name, usesysid: oid, reason: null, terminated: false, role_key: `${oid}:login+super:${name}` });
  const xact = (over: Partial<GuardPreparedRow> = {}): GuardPreparedRow => ({
    gid: "it's locked",
    owner: '16390',
    database_oid: '5',
    prepared: '2026-11-23 20:00:00+00',
    locks: ['AccessExclusiveLock on relation 1260'],
    here: true,
    ...over,
  });

  it('knows a deny-listed role from a row without a session, and ends its lock-holding session on the first blocked tick', async () => {
    const server = new FakeServer();
    server.ticks = [[sighting('16390', 'evil')], lockTimeout(), []];
    const holder = holderRow();
    server.unblocks = [[], [holder]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { deny: ['evil'] }), (e) => events.push(e));
    const running = g.run();
    await until(() => events.some((e) => e.type === 'info'));
    await g.stop();
    await running;
    expect(server.statements.filter((s) => s.name === 'pgrevoke_guard_unblock').map((s) => s.values)).toEqual([[[]], [['16390']]]);
    expect(events.flatMap((e) => (e.type === 'kill' ? [[e.kill.pid, e.kill.role, e.kill.reason]] : []))).toEqual([
      [50, 'evil', 'denylisted'],
    ]);
  });

  it("rolls back a denied owner's prepared transaction in its own database (gid quoted), emits and audits it; names the others", async () => {
    const server = new FakeServer();
    const audit = path.join(dir, 'audit.log');
    server.ticks = [[sighting('16390', 'evil', 50)], lockTimeout(), []];
    const elsewhere = xact({ gid: 'other-db', database_oid: '16400', here: false });
    const stranger = xact({ gid: 'stranger', owner: '17000', locks: ['RowExclusiveLock on relation 1262'] });
    server.prepared = [[], [xact(), elsewhere, stranger]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { deny: ['evil'], auditLog: audit }), (e) => events.push(e));
    const running = g.run();
    await until(() => events.some((e) => e.type === 'info'));
    await g.stop();
    await running;
    expect(server.statements.filter((s) => s.text.startsWith('ROLLBACK')).map((s) => s.text)).toEqual(["ROLLBACK PREPARED 'it''s locked'"]);
    const rollbacks = events.flatMap((e) => (e.type === 'rollback' ? [e.rollback] : []));
    expect(rollbacks).toEqual([
      expect.objectContaining({
        gid: "it's locked",
        role: 'evil',
        usesysid: 16390,
        databaseOid: 5,
        reason: 'denylisted',
        locks: 'AccessExclusiveLock on pg_authid',
        rolledBack: true,
        dryRun: false,
      }),
    ]);
    expect(rollbacks[0]!.detail).toBe(
      "role is on the deny list; its prepared transaction held AccessExclusiveLock on pg_authid, which blocked the guard's tick",
    );
    const said = events.flatMap((e) => (e.type === 'error' ? [e.message] : [])).join('\n');
    expect(said).toContain(
      'prepared transactions holding catalog locks: prepared transaction "it\'s locked" (role "evil", oid 16390, superuser;',
    );
    expect(said).toContain('AccessExclusiveLock on pg_authid: rolled back');
    expect(said).toContain(
      'prepared transaction "other-db" (role "evil", oid 16390, superuser; database oid 16400, prepared 2026-11-23 20:00:00+00): AccessExclusiveLock on pg_authid: role is on the deny list, but ROLLBACK PREPARED runs only in the database it was prepared in',
    );
    expect(said).toContain('prepared transaction "stranger" (oid 17000, a role unknown to the guard');
    expect(said).toContain('RowExclusiveLock on pg_database: left alone');
    const lines = (await fs.readFile(audit, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      expect.objectContaining({
        target: 'evil',
        action: 'rollback_prepared',
        reason: 'denylisted',
        result: 'done',
        prepared: {
          gid: "it's locked",
          ownerOid: 16390,
          databaseOid: 5,
          prepared: '2026-11-23 20:00:00+00',
          locks: 'AccessExclusiveLock on pg_authid',
        },
      }),
    ]);
  });

  it('a dry run rolls back and signals nothing: it says what it would do, once, and audits nothing', async () => {
    const server = new FakeServer();
    const audit = path.join(dir, 'audit.log');
    server.ticks = [[sighting('16390', 'evil', 50)], lockTimeout(), lockTimeout(), []];
    const holder = holderRow({ terminated: false });
    server.unblocks = [[], [holder], [holder]];
    server.prepared = [[], [xact()], [xact()]];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { deny: ['evil'], dryRun: true, auditLog: audit }), (e) => events.push(e));
    await g.init();
    const running = g.run();
    await until(() => events.some((e) => e.type === 'info'));
    await g.stop();
    await running;
    for (const s of server.statements) {
      expect(s.text).not.toMatch(/ROLLBACK|pg_terminate_backend|data_directory/);
      expect(s.name ?? '').not.toBe('pgrevoke_guard_unblock');
    }
    expect(events.flatMap((e) => (e.type === 'rollback' ? [[e.rollback.gid, e.rollback.rolledBack, e.rollback.dryRun]] : []))).toEqual([
      ["it's locked", false, true],
    ]);
    expect(events.flatMap((e) => (e.type === 'kill' ? [[e.kill.pid, e.kill.terminated, e.kill.dryRun]] : []))).toEqual([[50, false, true]]);
    const said = events.flatMap((e) => (e.type === 'error' ? [e.message] : [])).join('\n');
    expect(said).toContain('AccessExclusiveLock on pg_authid: would be ended (dry run)');
    expect(said).toContain('AccessExclusiveLock on pg_authid: would be rolled back (dry run)');
    // checked before the start, not created: a dry run does not even open it
    await expect(fs.access(audit)).rejects.toThrow(/ENOENT/);
  });

  it('a tick blocked past maxBlindMs does not exit (a restarted guard could not log in): it says so, once', async () => {
    const server = new FakeServer();
    server.ticks = [[], ...Array.from({ length: 60 }, lockTimeout), []];
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { maxBlindMs: 100 }), (e) => events.push(e));
    const running = g.run();
    await until(() => events.some((e) => e.type === 'info'));
    await g.stop();
    await expect(running).resolves.toBeUndefined();
    const said = events.flatMap((e) => (e.type === 'error' ? [e.message] : []));
    expect(said).toEqual([
      'tick blocked by a lock (lock_timeout 100 ms, SQLSTATE 55P03); no session or prepared transaction holds a lock on a system catalog',
      'tick blocked by a lock (lock_timeout 100 ms, SQLSTATE 55P03); no session or prepared transaction holds a lock on a system catalog; blocked longer than --max-blind (0.1 s): guard keeps running, since a guard that exits could not log back in while the lock is held',
    ]);
    expect(server.connects).toBe(1);
  });

  it('once(): one statement per node, counts what it found, errors per node', async () => {
    const server = new FakeServer();
    server.ticks = [[row(), row({ pid: 9 })]];
    const g = new Guard(config(server), () => undefined);
    expect(await g.once()).toEqual([{ node: 'h:5432', found: 2, sessions: 2, error: null }]);
    expect(server.ended).toBe(1);
    const down = new FakeServer();
    down.connectFailures = [new PgrevokeError('refused', { sqlstate: '08001' })];
    const [r] = await new Guard(config(down), () => undefined).once();
    expect(r!.error?.sqlstate).toBe('08001');
  });

  it('reloads the deny file when it changes and on reload(); an unreadable file keeps the names read before', async () => {
    const file = path.join(dir, 'deny');
    await fs.writeFile(file, '# denied roles\nmallory\n');
    const server = new FakeServer();
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { deny: ['eve'], denyFile: file }), (e) => events.push(e));
    await g.init();
    expect(g.rules().deny).toEqual(['eve', 'mallory']);
    const running = g.run();
    await until(() => server.statements.length > 2);
    await fs.writeFile(file, 'mallory\ntrudy\n');
    await until(() => events.some((e) => e.type === 'reloaded'));
    expect(events.find((e) => e.type === 'reloaded')).toMatchObject({ source: 'file', deny: 3, added: ['trudy'], removed: [] });
    await until(() => server.statements.some((s) => JSON.stringify(s.values?.[0]) === '["eve","mallory","trudy"]'));
    await fs.rm(file);
    await until(() => events.some((e) => e.type === 'error'));
    expect(g.rules().deny).toEqual(['eve', 'mallory', 'trudy']);
    await g.stop();
    await running;
    // stopped: no tick looks at the file any more, only reload() (SIGHUP) reads it
    await fs.writeFile(file, 'trudy\n');
    await g.reload('signal');
    expect(events.filter((e) => e.type === 'reloaded').at(-1)).toMatchObject({ source: 'signal', removed: ['mallory'] });
    expect(g.rules().deny).toEqual(['eve', 'trudy']);
  });

  it('a deny file that changed but cannot be read is reported once, not at every tick', async () => {
    const file = path.join(dir, 'deny');
    await fs.writeFile(file, 'mallory\n');
    const server = new FakeServer();
    const events: GuardEvent[] = [];
    const g = new Guard(config(server, { denyFile: file }), (e) => events.push(e));
    await g.init();
    const running = g.run();
    await fs.rm(file);
    await fs.mkdir(file); // stat works, reading fails (EISDIR)
    await until(() => events.some((e) => e.type === 'error'));
    const ticks = server.statements.length;
    await until(() => server.statements.length > ticks + 10);
    await g.stop();
    await running;
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
    expect(events.find((e) => e.type === 'error')).toMatchObject({ message: expect.stringContaining('EISDIR') });
    expect(g.rules().deny).toEqual(['mallory']);
  });

  it('init() refuses an unreadable deny file and an unwritable audit log (usage errors)', async () => {
    const server = new FakeServer();
    await expect(new Guard(config(server, { denyFile: path.join(dir, 'nope') }), () => undefined).init()).rejects.toThrow(
      /cannot read the deny file/,
    );
    await expect(new Guard(config(server, { auditLog: path.join(dir, 'no', 'such', 'a.log') }), () => undefined).init()).rejects.toThrow(
      /cannot write --audit-log .*: the directory .* does not exist; nothing was changed/,
    );
  });
});

describe('guard output', () => {
  const c = new Chalk({ level: 0 });
  const kill = {
    time: '2026-11-23T20:00:00.000Z',
    node: 'db1:5432',
    pid: 123,
    role: 'x',
    usesysid: 16384,
    database: 'app',
    client: 'local',
    application: 'psql',
    backendType: 'client backend',
    state: 'idle',
    backendStart: null,
    reason: 'role_nologin' as const,
    detail: 'role has NOLOGIN',
    query: 'SELECT\n  1',
    terminated: true,
    dryRun: false,
  };

  it('one human line per kill', () => {
    expect(guardLine({ type: 'kill', kill }, c)).toBe(
      '2026-11-23T20:00:00.000Z db1:5432 kill pid 123 role "x" db "app" app "psql" client local reason role_nologin (role has NOLOGIN) query: SELECT 1',
    );
    expect(guardLine({ type: 'kill', kill: { ...kill, dryRun: true, terminated: false, role: null, application: '' } }, c)).toBe(
      '2026-11-23T20:00:00.000Z db1:5432 would-kill pid 123 role (dropped, oid 16384) db "app" app - client local reason role_nologin (role has NOLOGIN) query: SELECT 1',
    );
  });

  it('one JSON object per event, event kill / would_kill / denied', () => {
    expect(guardJson({ type: 'kill', kill })).toMatchObject({
      v: 1,
      event: 'kill',
      pid: 123,
      role: 'x',
      reason: 'role_nologin',
      terminated: true,
      query: 'SELECT\n  1',
    });
    expect(guardJson({ type: 'kill', kill: { ...kill, dryRun: true, terminated: false } }).event).toBe('would_kill');
    expect(guardJson({ type: 'denied', kill: { ...kill, terminated: false }, message: 'permission denied' })).toMatchObject({
      event: 'denied',
      error: 'permission denied',
    });
  });

  it('a rollback of a prepared transaction: its own JSON event and human line', () => {
    const rollback = {
      time: '2026-11-23T20:00:00.000Z',
      node: 'db1:5432',
      gid: 'lockout',
      role: 'evil',
      usesysid: 16390,
      databaseOid: 5,
      prepared: '2026-11-23 19:59:00+00',
      locks: 'AccessExclusiveLock on pg_authid',
      reason: 'denylisted' as const,
      detail: 'role is on the deny list',
      rolledBack: true,
      dryRun: false,
    };
    expect(guardJson({ type: 'rollback', rollback })).toEqual({ v: 1, event: 'rollback_prepared', ...rollback });
    expect(guardJson({ type: 'rollback', rollback: { ...rollback, rolledBack: false, dryRun: true } }).event).toBe(
      'would_rollback_prepared',
    );
    expect(guardLine({ type: 'rollback', rollback }, c)).toBe(
      '2026-11-23T20:00:00.000Z db1:5432 rollback-prepared gid "lockout" role "evil" db oid 5 reason denylisted (role is on the deny list)',
    );
    expect(guardStatus({ type: 'rollback', rollback })).toBeNull();
  });

  it('status lines for stderr', () => {
    expect(guardStatus({ type: 'reconnecting', node: 'db1:5432', error: 'connection refused', lost: true, attempt: 2, delayMs: 200 })).toBe(
      'pgrevoke guard: db1:5432: connection lost: connection refused; reconnecting in 200 ms (attempt 2)',
    );
    expect(guardStatus({ type: 'reloaded', source: 'signal', deny: 2, added: ['a'], removed: [] })).toBe(
      'pgrevoke guard: reloaded (SIGHUP): 2 role(s) denied; added "a"',
    );
    expect(
      guardStatus({ type: 'connected', node: 'n:1', user: 'postgres', version: '18.4', standby: true, superuser: true, afterFailures: 0 }),
    ).toBe('pgrevoke guard: n:1: connected as postgres (PostgreSQL 18.4, standby)');
    expect(guardStatus({ type: 'kill', kill })).toBeNull();
  });
});
