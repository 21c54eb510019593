// What the guard lockout CLI tests share: guard's JSON Lines lockout events from its stdout, and
// waiting for the guard's first log read on a node (the first poll starts at the end of the log:
// a failure logged before it would not count), and the cluster-and-guards fixture of a describe block.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { startCli, type CliRun } from '../helpers/cli.js';
import type { TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';
import { startRedTeam } from '../helpers/lockout.js';

export interface LockoutEventLine {
  v: number;
  event: string;
  time: string;
  node: string | null;
  lockoutId: string | null;
  kind: string | null;
  role: string | null;
  address: string | null;
  count: number | null;
  since: string | null;
  until: string | null;
  nodes: string[] | null;
  reason: string | null;
  detail: string;
}

const LOCKOUT_EVENTS = new Set(['lockout', 'reapplied', 'expired', 'unlocked', 'login_kept', 'failed', 'cap']);

/** The lockout events guard --json printed so far (whole lines only). */
export function lockoutEvents(g: CliRun, event?: string): LockoutEventLine[] {
  const out = g.stdout();
  return out
    .slice(0, out.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LockoutEventLine)
    .filter((e) => LOCKOUT_EVENTS.has(e.event) && (!event || e.event === event));
}

/** Until the guard's lockout has read `cl`'s log once (its session's last statement read the log). */
export async function firstLogRead(cl: TestCluster, g: CliRun): Promise<void> {
  await until(
    async () =>
      (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard' AND query LIKE '%pg_read_binary_file%'`))
        .length > 0,
    15_000,
    () => `the guard's first log read on ${cl.port}\n${g.stderr()}`,
  );
}

/** A redteam cluster, a temp directory and the guards started, for a describe block; all ended after it. */
export interface LockoutGuardFixture {
  cl: TestCluster;
  client: pg.Client;
  dir: string;
  /** `guard --dsn --json --lockout-after N --hba-file`, once connected (and, with `logRead`, once it read the log). */
  start(env: NodeJS.ProcessEnv, after: number, opts?: { logRead?: boolean }): Promise<CliRun>;
  /** SIGTERM, and exit 0. */
  stop(g: CliRun): Promise<void>;
}

/** Call at the top of a describe block: beforeAll starts the cluster, afterAll ends everything. */
export function lockoutGuardFixture(major: number, prefix: string): LockoutGuardFixture {
  const running: CliRun[] = [];
  const f = {
    dir: '',
    async start(env: NodeJS.ProcessEnv, after: number, opts: { logRead?: boolean } = {}) {
      const g = startCli(['guard', '--dsn', f.cl.dsn(), '--json', '--lockout-after', String(after), '--hba-file', f.cl.hbaFile], env);
      running.push(g);
      await until(
        () => /connected as/.test(g.stderr()),
        15_000,
        () => `guard connected\n${g.stderr()}`,
      );
      if (opts.logRead) await firstLogRead(f.cl, g);
      return g;
    },
    async stop(g: CliRun) {
      g.signal('SIGTERM');
      expect(await g.exited).toBe(0);
    },
  } as LockoutGuardFixture;
  beforeAll(async () => {
    ({ cl: f.cl, client: f.client } = await startRedTeam(major));
    f.dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    for (const g of running) g.signal('SIGKILL');
    await f.client?.end().catch(() => undefined);
    await f.cl?.destroyAll();
    if (f.dir) await fs.rm(f.dir, { recursive: true, force: true });
  });
  return f;
}
