// One tick on one connected node: the one statement (guardTick, sql.ts) that finds and terminates
// every session that must end, then what of it to report. A session is reported once, however many
// ticks see it; the roles of every session seen are remembered for when pg_authid is locked.
import { guardAuditEntry, deniedMessage, toKill, type ReasonRow } from './kill-event.js';
import { sparedPids } from './lockout-own.js';
import { guardTick, parseRoleKey, type GuardQuery, type GuardRow, type GuardRules } from './sql.js';
import { operatorOf, type GuardContext, type NodeState } from './state.js';
import type { GuardAuditEntry } from './types.js';

/** Roles remembered per node at most; past that the memory starts afresh (it refills within a tick). */
const MAX_KNOWN_ROLES = 10_000;

/** What one tick did on one node. */
export interface TickResult {
  /** Sessions reported (killed, would be killed, or could not be killed). */
  reported: number;
  /**
   * Session rows the statement returned: every session it looks at (client backends and walsenders,
   * not the guard's own nor an excluded role's) when the node's roles are all new to it, as on a
   * fresh node (--once); later ticks return only the sessions with a reason or a role new to it.
   */
  sessions: number;
}

/** One pass on one connected node: one statement. */
export async function tick(ctx: GuardContext, n: NodeState): Promise<TickResult> {
  const { cfg } = ctx;
  await ctx.deny.refresh();
  const q = tickQuery(n, ctx.deny.rules(), cfg.dryRun);
  const { rows: all } = await n.client!.query<GuardRow>({ ...q, query_timeout: ctx.queryTimeoutMs });
  learn(n, all);
  const reported = report(
    ctx,
    n,
    all.filter((r): r is ReasonRow => r.reason !== null),
  );
  return { reported, sessions: all.filter((r) => r.pid !== null).length };
}

/** Each session of the tick reported once (an event, and an audit line unless a dry run); returns how many were. */
function report(ctx: GuardContext, n: NodeState, rows: readonly ReasonRow[]): number {
  // most ticks find nothing: nothing to build for them (seen holds the last tick's sessions only)
  if (rows.length === 0) {
    n.seen.clear();
    return 0;
  }
  const { cfg } = ctx;
  const time = new Date().toISOString();
  const seen = new Map<string, string>();
  const entries: GuardAuditEntry[] = [];
  const operator = operatorOf(ctx, n);
  let reported = 0;
  for (const r of rows) {
    const key = `${r.pid}:${r.backend_start ?? ''}`;
    const kill = toKill(r, n.node.name, time, cfg.dryRun);
    const what = cfg.dryRun ? `dry:${r.reason}` : !r.may_signal ? 'denied' : r.terminated ? 'killed' : 'gone';
    // a backend still exiting is signalled again, but reported once; one that exited before the
    // signal (pg_terminate_backend false) is not an action at all
    const before = n.seen.get(key);
    if (what !== 'gone') seen.set(key, before === 'killed' ? 'killed' : what);
    if (what === 'gone' || before === what || (before === 'killed' && what !== 'denied')) continue;
    reported++;
    if (what === 'denied') {
      const message = deniedMessage(kill);
      ctx.emit({ type: 'denied', kill, message });
      if (!cfg.dryRun) entries.push(guardAuditEntry(kill, operator, 'denied', message));
    } else {
      ctx.emit({ type: 'kill', kill });
      if (!cfg.dryRun) entries.push(guardAuditEntry(kill, operator, 'done'));
    }
  }
  n.seen = seen;
  ctx.audit.write(entries);
  return reported;
}

function learn(n: NodeState, rows: readonly GuardRow[]): void {
  if (rows.length === 0) return;
  if (n.roles.size > MAX_KNOWN_ROLES) n.roles.clear();
  for (const r of rows) n.roles.set(r.usesysid, parseRoleKey(r.role_key));
  n.knownKeys = null;
}

/**
 * The tick statement and its parameters, built again only when the rules or the roles known changed;
 * the guard's other backends on the node (its lockout connection's) are spared as of now.
 */
function tickQuery(n: NodeState, rules: GuardRules, dryRun: boolean): GuardQuery {
  const known = (n.knownKeys ??= [...n.roles.values()].map((r) => r.key));
  const last = n.lastTick;
  const spared = sparedPids(n.node);
  const query = last && last.rules === rules && last.known === known ? last.query : guardTick(rules, { dryRun, known });
  n.lastTick = { rules, known, query };
  if (!spared.length) return query;
  return { ...query, values: [...query.values.slice(0, -1), spared] };
}
