// A lockout survives a SIGKILL of guard right after it was put in force: the state directory has it
// (written, fsync'd, before its pg_hba.conf line), so a guard started again holds it (the line
// stays, not written anew) and `pgrevoke lockouts` lists it. Only the knocks (failures against a
// lockout in force) are written lazily (src/lockout/engine.ts, KNOCK_WRITE_MS). The CLI as a
// subprocess against a real server logging csvlog, read over SQL.
import { mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockRules } from '../../src/lockout/hba-block.js';
import { readLockouts } from '../../src/lockout/store.js';
import { runCli, startCli, type CliRun } from '../helpers/cli.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { loginFrom, startRedTeam } from '../helpers/lockout.js';
import { attempt } from '../helpers/serverlog.js';

describe.each(MAJORS)('a lockout across a SIGKILL of guard, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let dir = '';
  const guards: CliRun[] = [];

  beforeAll(async () => {
    ({ cl, client } = await startRedTeam(major));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-lockout-sigkill-'));
  });
  afterAll(async () => {
    for (const g of guards) g.signal('SIGKILL');
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const startGuard = async (env: NodeJS.ProcessEnv): Promise<CliRun> => {
    const g = startCli(['guard', '--dsn', cl.dsn(), '--json', '--lockout-after', '3', '--hba-file', cl.hbaFile], env);
    guards.push(g);
    await until(
      async () =>
        (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND query LIKE '%pg_read_binary_file%'`))
          .length > 0,
      15_000,
      () => `the guard's first log read\n${g.stderr()}`,
    );
    return g;
  };
  const events = (g: CliRun, kind: string) =>
    g
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === kind);

  it('killed the moment the lockout event is out: the state has it in force, a new guard keeps it, lockouts lists it', async () => {
    const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(dir, 'state-')) };
    const g = await startGuard(env);
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.0.0.4' })).toBe('28P01');
    await until(
      () => events(g, 'lockout').length > 0,
      15_000,
      () => `the lockout event\n${g.stdout()}\n${g.stderr()}`,
    );
    g.signal('SIGKILL');
    await g.exited;
    const stored = await readLockouts(env);
    expect(stored.map((l) => [l.role, l.address, l.ended, l.applied.length])).toEqual([['alice', '127.0.0.4', null, 1]]);
    const line = blockRules(readFileSync(cl.hbaFile, 'utf8')).map((r) => r.id);
    expect(line).toEqual([stored[0]!.id]);
    expect(await loginFrom(cl, '127.0.0.4', 'alice', 'pw-alice')).toBe('28000');

    const again = await startGuard(env);
    // a pass has run (the first log read is after connecting); the lockout is not made or written again
    await new Promise((r) => setTimeout(r, 1500));
    expect(events(again, 'lockout')).toEqual([]);
    expect(blockRules(readFileSync(cl.hbaFile, 'utf8')).map((r) => r.id)).toEqual([stored[0]!.id]);
    expect(await loginFrom(cl, '127.0.0.4', 'alice', 'pw-alice')).toBe('28000');
    const r = await runCli(['lockouts', '--json'], env);
    const listed = (JSON.parse(r.stdout) as { lockouts: { id: string; status: string }[] }).lockouts;
    expect(listed.map((l) => [l.id, l.status])).toEqual([[stored[0]!.id, 'active']]);
    again.signal('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
