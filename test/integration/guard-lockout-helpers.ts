// What the guard lockout CLI tests share: guard's JSON Lines lockout events from its stdout, and
// waiting for the guard's first log read on a node (the first poll starts at the end of the log:
// a failure logged before it would not count).
import type { CliRun } from '../helpers/cli.js';
import type { TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';

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
