// One node's connection: opened (raced against stop), set up (lock_timeout, the statements a
// blocked tick needs prepared in advance), what the guard's role may do there said once, and
// closed. Plus the reconnect policy: what is fatal at start, and how long to wait before retrying.
import { PgrevokeError } from '../errors.js';
import { connect as pgConnect } from '../pg/connect.js';
import type { ConnParams } from '../pg/conninfo.js';
import { lockTimeoutMs } from './failures.js';
import { GUARD_PREPARED, GUARD_SETUP, guardUnblock, type GuardSetupRow } from './sql.js';
import type { GuardContext, NodeState } from './state.js';
import type { StopSignal } from './stop.js';
import type { GuardClient } from './types.js';

/** SQLSTATEs that at start mean "the configuration is wrong", not "the server is not there yet". */
const FATAL_AT_START = new Set(['28P01', '28000', '3D000', '42501']);

export function isFatalAtStart(err: unknown): boolean {
  return err instanceof PgrevokeError && err.sqlstate !== undefined && FATAL_AT_START.has(err.sqlstate);
}

export function backoffDelay(attempt: number, minMs = 100, maxMs = 5000): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20));
}

/** Connect and set up n; n.client stays null when the guard stopped before the connect ended. */
export async function open(ctx: GuardContext, n: NodeState, stop: StopSignal): Promise<void> {
  const connect = ctx.cfg.connect ?? ((p: ConnParams) => pgConnect(p) as Promise<GuardClient>);
  const pending = connect(n.node.params);
  // stop() must not wait for a connect to a black-holed host
  const client = await stop.race(pending);
  if (client === null) {
    pending.then((c) => c.end()).catch(() => undefined);
    return;
  }
  try {
    const s = await setUp(ctx, client);
    n.user = s.user;
    n.major = s.major;
    n.superuser = s.superuser;
    n.signalBackend = s.signal_backend;
    if (!n.connectedOnce) warnPrivileges(ctx, n.node.name, s);
    ctx.emit({
      type: 'connected',
      node: n.node.name,
      user: s.user,
      version: s.version,
      standby: s.standby,
      superuser: s.superuser,
      afterFailures: n.failures,
    });
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  n.lostWith = null;
  client.on?.('error', (err) => (n.lostWith ??= err));
  n.client = client;
  n.connectedOnce = true;
  n.failures = 0;
  n.seen.clear();
}

/** The session settings, and who the guard is there. */
async function setUp(ctx: GuardContext, client: GuardClient): Promise<GuardSetupRow> {
  const query_timeout = ctx.queryTimeoutMs;
  const { rows } = await client.query<GuardSetupRow>({
    text: GUARD_SETUP,
    values: [`${lockTimeoutMs(ctx.cfg.intervalMs)}ms`],
    query_timeout,
  });
  // prepared now, while nothing is locked: under a catalog lock they must run without parsing
  await client.query({ ...guardUnblock(ctx.cfg), values: [[]], query_timeout });
  await client.query({ ...GUARD_PREPARED, query_timeout });
  return rows[0]!;
}

/** What the guard's role cannot see or end on that node, said at its first connection. */
function warnPrivileges(ctx: GuardContext, node: string, s: GuardSetupRow): void {
  if (!s.superuser && !s.read_all_stats)
    ctx.emit({
      type: 'warning',
      node,
      message: `${s.user} is neither superuser nor a member of pg_read_all_stats: other roles' sessions show no state, so idle timeouts cannot apply to them`,
    });
  if (!s.superuser && !s.signal_backend)
    ctx.emit({
      type: 'warning',
      node,
      message: `${s.user} is neither superuser nor a member of pg_signal_backend: it can terminate only sessions of roles it is a member of`,
    });
  else if (!s.superuser)
    ctx.emit({
      type: 'warning',
      node,
      message: `${s.user} is not a superuser: superusers' sessions cannot be terminated (they are reported as denied)`,
    });
}

export async function drop(n: NodeState): Promise<void> {
  const c = n.client;
  n.client = null;
  if (c) await c.end().catch(() => undefined);
}
