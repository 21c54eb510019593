// guard --fleet: the clusters' lockout engines share the state directory's lockouts.json, yet each
// acts on, and counts against, only the lockouts of its own nodes. A `--lockout-by role` lockout
// made on cluster a sets NOLOGIN on a's primary and not on b's; a pair locked on cluster a and
// then attacked on cluster b is locked on b by b's own failures (not counted as knocks on a's).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { HARDENED_HBA, loginFrom, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead, lockoutEvents } from './guard-lockout-helpers.js';

interface StoredLockout {
  kind: string;
  role: string | null;
  address: string | null;
  nodes: string[];
  applied: string[];
}

describe.each(MAJORS)('guard --fleet keeps the clusters lockouts apart on PostgreSQL %i', (major) => {
  const servers: { cl: TestCluster; client: pg.Client }[] = [];
  let dir = '';
  let guard: CliRun | null = null;
  const a1 = () => servers[0]!.cl;
  const b1 = () => servers[1]!.cl;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) servers.push(await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-apart-'));
  });

  beforeEach(async () => {
    for (const { cl } of servers) {
      await cl.writeDataFile('pg_hba.conf', HARDENED_HBA);
      await cl.sql(`ALTER ROLE alice LOGIN CONNECTION LIMIT -1`);
      await cl.sql('SELECT pg_reload_conf()');
    }
  });

  afterEach(async () => {
    guard?.signal('SIGKILL');
    await guard?.exited;
    guard = null;
  });

  afterAll(async () => {
    for (const s of servers) {
      await s.client.end().catch(() => undefined);
      await s.cl.destroyAll();
    }
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function startGuard(extra: string[]): Promise<{ g: CliRun; store: string }> {
    const fleet = path.join(dir, 'fleet.yaml');
    const node = (name: string, cl: TestCluster) => `      - name: ${name}\n        dsn: ${JSON.stringify(cl.dsn())}\n`;
    await fs.writeFile(fleet, `clusters:\n  - name: a\n    nodes:\n${node('a1', a1())}  - name: b\n    nodes:\n${node('b1', b1())}`);
    const env = { PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) };
    const g = (guard = startCli(['guard', '--fleet', fleet, '--json', '--lockout-after', '3', ...extra], env));
    await until(
      () => (g.stderr().match(/connected as/g) ?? []).length === 2,
      20_000,
      () => `guard connected to 2 nodes\n${g.stderr()}`,
    );
    for (const cl of [a1(), b1()]) await firstLogRead(cl, g);
    return { g, store: path.join(env.PGREVOKE_STATE_DIR, 'lockouts.json') };
  }

  const stored = async (store: string) => (JSON.parse(await fs.readFile(store, 'utf8')) as { lockouts: StoredLockout[] }).lockouts;
  const canLogin = async (cl: TestCluster) =>
    (await cl.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'alice'`))[0]!.l;

  it('a role lockout of cluster a sets NOLOGIN on a alone; failures on b make b its own', async () => {
    const { g, store } = await startGuard(['--lockout-by', 'role']);
    for (let i = 0; i < 3; i++) expect(await attempt(a1(), { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await until(
      async () => !(await canLogin(a1())),
      15_000,
      () => `alice NOLOGIN on a1\n${g.stdout()}\n${g.stderr()}`,
    );
    // several passes of b's engine go by (every 400 ms): none of them touches b1
    await new Promise((r) => setTimeout(r, 2000));
    expect(await canLogin(b1())).toBe(true);
    expect(await loginFrom(b1(), '127.0.0.2', 'alice', 'pw-alice')).toBe('allow');
    expect(lockoutEvents(g, 'lockout').map((e) => [e.node, e.kind, e.nodes])).toEqual([['a1', 'role', ['a1']]]);

    for (let i = 0; i < 3; i++) expect(await attempt(b1(), { user: 'alice', from: '127.0.0.3' })).toBe('28P01');
    await until(
      async () => !(await canLogin(b1())),
      15_000,
      () => `alice NOLOGIN on b1\n${g.stdout()}\n${g.stderr()}`,
    );
    // recorded in force once the pass has ended the sessions
    await until(
      async () => (await stored(store)).every((l) => l.applied.length),
      10_000,
      () => `both lockouts recorded in force\n${g.stdout()}`,
    );
    expect((await stored(store)).map((l) => [l.kind, l.nodes, l.applied])).toEqual([
      ['role', ['a1'], ['a1']],
      ['role', ['b1'], ['b1']],
    ]);
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  });

  it('a pair locked on cluster a, then attacked on cluster b, is locked on b by b`s failures', async () => {
    const { g, store } = await startGuard([]);
    for (let i = 0; i < 3; i++) expect(await attempt(a1(), { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await until(
      async () => (await loginFrom(a1(), '127.0.0.2', 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from 127.0.0.2 refused on a1\n${g.stdout()}\n${g.stderr()}`,
    );
    for (let i = 0; i < 3; i++) expect(await attempt(b1(), { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await until(
      async () => (await loginFrom(b1(), '127.0.0.2', 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from 127.0.0.2 refused on b1\n${g.stdout()}\n${g.stderr()}`,
    );
    // said once the pass has checked the reload
    await until(
      () => lockoutEvents(g, 'lockout').length === 2,
      10_000,
      () => `the lockout events of a1 and b1\n${g.stdout()}`,
    );
    expect(lockoutEvents(g, 'lockout').map((e) => [e.node, e.address, e.nodes])).toEqual([
      ['a1', '127.0.0.2', ['a1']],
      ['b1', '127.0.0.2', ['b1']],
    ]);
    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
    expect((await stored(store)).map((l) => [l.role, l.address, l.nodes, l.applied])).toEqual([
      ['alice', '127.0.0.2', ['a1'], ['a1']],
      ['alice', '127.0.0.2', ['b1'], ['b1']],
    ]);
  });
});
