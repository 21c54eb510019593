// pgrevoke guard --lockout-after as a user runs it (the CLI as a subprocess, against real servers
// logging csvlog, read over SQL): three wrong passwords for alice from 127.0.0.2 lock that pair
// within seconds (the right password from there is refused, 28000), while alice from 127.0.0.3
// still gets in; the lockout is a JSON event on guard's stdout (--json); `pgrevoke lockouts --json`
// over the same state directory lists the pair.
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { loginFrom, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';

describe.each(MAJORS)('guard --lockout-after (CLI) on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  let guard: CliRun | null = null;

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-lockout-'));
  });

  afterAll(async () => {
    guard?.signal('SIGKILL');
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('three wrong passwords from 127.0.0.2 lock alice out from there, not from 127.0.0.3; lockouts lists the pair', async () => {
    const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(dir, 'state-')) };
    const g = (guard = startCli(['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', '3', '--hba-file', cl.hbaFile], env));
    await until(
      () => /connected as/.test(g.stderr()),
      15_000,
      () => `guard connected\n${g.stderr()}`,
    );
    expect(g.stderr()).toContain('(one cluster (1 node); log: over SQL)');
    // the first poll starts at the end of the log: a failure logged before it would not count
    await until(
      async () =>
        (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND query LIKE '%pg_read_binary_file%'`))
          .length > 0,
      10_000,
      () => `the guard's first log read\n${g.stderr()}`,
    );
    expect(await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')).toBe('allow');

    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.0.0.2' })).toBe('28P01');
    await until(
      async () => (await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')) === '28000',
      15_000,
      () => `alice from 127.0.0.2 to be refused\n${g.stderr()}`,
    );
    expect(await loginFrom(cl, '127.0.0.3', 'alice', 'pw-alice')).toBe('allow');
    // the event is said once the pass that wrote the lines has checked them: with --json, one JSON object on stdout
    const lockoutEvents = () =>
      g
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e.event === 'lockout');
    await until(
      () => lockoutEvents().length > 0,
      10_000,
      () => `the lockout event\n${g.stdout()}\n${g.stderr()}`,
    );
    expect(lockoutEvents()).toEqual([
      expect.objectContaining({
        v: 1,
        event: 'lockout',
        kind: 'address',
        role: 'alice',
        address: '127.0.0.2',
        count: 3,
        node: `127.0.0.1:${cl.port}`,
        since: expect.any(String),
        until: expect.any(String),
        reason: expect.stringContaining('3 failed logins'),
      }),
    ]);
    expect(g.stderr()).not.toContain('lockout in force');

    const r = await runCli(['lockouts', '--json'], env);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { lockouts: { role: string; address: string; kind: string; status: string }[] };
    expect(out.lockouts).toEqual([expect.objectContaining({ role: 'alice', address: '127.0.0.2', kind: 'address' })]);

    g.signal('SIGTERM');
    expect(await g.exited).toBe(0);
  });

  it('--lockout-after with --once: refused, exit 2', async () => {
    const r = await runCli(['guard', '--dsn', cl.dsn(), '--once', '--lockout-after', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot be used with --once');
  });
});
