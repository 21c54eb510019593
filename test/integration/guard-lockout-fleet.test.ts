// guard --lockout-after over a fleet file (issue 16): one lockout engine per cluster. Three wrong
// passwords for alice from 127.0.0.2 on one node of cluster "a" lock that pair on both of a's nodes
// (the attacker tries the other node next), and not on cluster "b"'s node; failures on b's node
// lock the pair there alone. The start line says how the nodes are grouped.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { HARDENED_HBA, loginFrom, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';
import { firstLogRead, lockoutEvents } from './guard-lockout-helpers.js';

describe.each(MAJORS)('guard --lockout-after --fleet on PostgreSQL %i', (major) => {
  const servers: { cl: TestCluster; client: pg.Client }[] = [];
  let dir = '';
  let guard: CliRun | null = null;
  const server = (i: number) => () => servers[i]!.cl;
  const [a1, a2, b1] = [server(0), server(1), server(2)];

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-fleet-'));
  });

  afterAll(async () => {
    guard?.signal('SIGKILL');
    for (const s of servers) {
      await s.client.end().catch(() => undefined);
      await s.cl.destroyAll();
    }
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const refused = (cl: TestCluster, from: string, g: CliRun) =>
    until(
      async () => (await loginFrom(cl, from, 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from ${from} to be refused on ${cl.port}\n${g.stdout()}\n${g.stderr()}`,
    );

  it('failures on one node of a cluster lock the pair on every node of it, on no node of another cluster', async () => {
    const fleet = path.join(dir, 'fleet.yaml');
    const node = (name: string, cl: TestCluster) => `      - name: ${name}\n        dsn: ${JSON.stringify(cl.dsn())}\n`;
    await fs.writeFile(
      fleet,
      `clusters:\n  - name: a\n    nodes:\n${node('a1', a1())}${node('a2', a2())}  - name: b\n    nodes:\n${node('b1', b1())}`,
    );
    const env = { PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) };
    const g = (guard = startCli(['guard', '--fleet', fleet, '--json', '--lockout-after', '3'], env));
    await until(
      () => (g.stderr().match(/connected as/g) ?? []).length === 3,
      20_000,
      () => `guard connected to 3 nodes\n${g.stderr()}`,
    );
    expect(g.stderr()).toContain('2 clusters, each its own: cluster a (2 nodes), cluster b (1 node)');
    for (const cl of [a1(), a2(), b1()]) await firstLogRead(cl, g);

    // on a2 (the standby, say): a1 and a2 refuse the pair, b1 does not
    for (let i = 0; i < 3; i++) expect(await attempt(a2(), { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await refused(a1(), '127.0.0.2', g);
    await refused(a2(), '127.0.0.2', g);
    await until(
      () => lockoutEvents(g, 'lockout').length === 2,
      10_000,
      () => `the lockout events of a1 and a2\n${g.stdout()}`,
    );
    expect(lockoutEvents(g, 'lockout').map((e) => [e.node, e.role, e.address, e.nodes])).toEqual(
      expect.arrayContaining([
        ['a1', 'alice', '127.0.0.2', ['a1', 'a2']],
        ['a2', 'alice', '127.0.0.2', ['a1', 'a2']],
      ]),
    );
    expect(await loginFrom(b1(), '127.0.0.2', 'alice', 'pw-alice')).toBe('allow');
    expect(await fs.readFile(b1().hbaFile, 'utf8')).toBe(HARDENED_HBA);

    // on b1, from another address: b1 alone
    for (let i = 0; i < 3; i++) expect(await attempt(b1(), { user: 'alice', from: '127.4.0.4' })).toBe('28P01');
    await refused(b1(), '127.4.0.4', g);
    await until(
      () => lockoutEvents(g, 'lockout').length === 3,
      10_000,
      () => `the lockout event of b1\n${g.stdout()}`,
    );
    expect(lockoutEvents(g, 'lockout')[2]).toMatchObject({ node: 'b1', role: 'alice', address: '127.4.0.4', nodes: ['b1'] });
    expect(await loginFrom(a1(), '127.4.0.4', 'alice', 'pw-alice')).toBe('allow');
    expect(await loginFrom(a2(), '127.4.0.4', 'alice', 'pw-alice')).toBe('allow');

    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  });
});
