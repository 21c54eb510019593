// pgrevoke lockouts: the failed-login lockouts in the state directory (guard --lockout-after makes
// them): role, address, kind, failures, since, until, the nodes it holds on, and those knocking on
// it since. Reads the state only: it works while the database is down.
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode } from '../errors.js';
import { readLockouts, storePath } from '../lockout/store.js';
import type { Lockout } from '../lockout/types.js';
import { shownName, table, type Column } from '../report/format.js';
import { terminalSafe } from '../util/terminal-safe.js';

/** `active` until its end; `ending` once past it or unlocked while still in force on some node. */
export function lockoutStatus(l: Lockout, now = Date.now()): string {
  if (l.ended) {
    const why = l.ended.why === 'unlock' ? 'unlocked' : l.ended.why === 'merged' ? 'merged into a prefix lockout' : 'expired';
    return `${why}, still on ${l.applied.join(', ') || 'no node'}`;
  }
  if (Date.parse(l.until) <= now) return 'expired (taken out at the next enforcement)';
  return l.applied.length ? 'active' : 'pending (not in force yet)';
}

const COLUMNS: Column[] = [
  { head: 'role' },
  { head: 'address' },
  { head: 'kind' },
  { head: 'count' },
  { head: 'since', drop: 3 },
  { head: 'until' },
  { head: 'node', shrink: 10, drop: 2 },
  { head: 'status', shrink: 12 },
  { head: 'knocks', drop: 1 },
];

export async function run([flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  void flags;
  const ctx = new Context(g);
  const lockouts = await readLockouts();
  const now = Date.now();
  if (ctx.json) {
    ctx.printJson({ schemaVersion: 1, file: storePath(), lockouts: lockouts.map((l) => ({ ...l, status: lockoutStatus(l, now) })) });
    return ExitCode.OK;
  }
  if (!lockouts.length) {
    ctx.out(`no lockouts in ${storePath()}`);
    return ExitCode.OK;
  }
  ctx.out(
    table(
      COLUMNS,
      lockouts.map((l) => [
        l.role === null ? '(every role)' : shownName(l.role),
        l.address ?? '(everywhere)',
        l.kind,
        l.count,
        l.since,
        l.until,
        (l.applied.length ? l.applied : l.nodes).join(', '),
        lockoutStatus(l, now),
        l.knocks ? `${l.knocks}, last ${l.lastKnock}` : '0',
      ]),
      ctx.c,
    ),
  );
  for (const l of lockouts) ctx.out(`${l.id}: ${terminalSafe(l.reason)}`);
  return ExitCode.OK;
}
