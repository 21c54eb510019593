// A tick timed out on a lock (55P03): the guard's way out. It ends the sessions holding locks on
// system catalogs whose roles are revoked or denied, rolls back such prepared transactions (which
// of them: unblock.ts decides), and says who holds what. Every statement here was prepared at
// connect (connection.ts), since parsing one may itself wait on the locked catalog.
import { DATA_DIRECTORY_SQL, signalBackends, type ServerHome } from '../pg/local-signal.js';
import { errText, isConnectionLoss, isLockTimeout, lockTimeoutMs, REPEAT_MS } from './failures.js';
import { guardAuditEntry } from './kill-event.js';
import { DEFAULT_MAX_BLIND_MS } from './options.js';
import { GUARD_PREPARED, guardUnblock, rollbackPrepared, type GuardPreparedRow, type GuardRules, type GuardUnblockRow } from './sql.js';
import { operatorOf, type GuardContext, type NodeState } from './state.js';
import type { GuardAuditEntry } from './types.js';
import {
  describeHolder,
  describePrepared,
  endableOids,
  endReason,
  holderKill,
  preparedRollback,
  preparedVerdict,
  rollbackAuditEntry,
} from './unblock.js';

/**
 * The tick timed out on a lock: end the sessions holding locks on system catalogs whose roles
 * are revoked or denied (by what the guard remembers of them), roll back such prepared
 * transactions, and say who holds what.
 */
export async function unblock(ctx: GuardContext, n: NodeState): Promise<void> {
  const rules = ctx.deny.rules();
  const sessions = await endSessionHolders(ctx, n, rules);
  const prepared = await endPreparedHolders(ctx, n, rules);
  const held = [
    ...(sessions.length ? [`sessions holding catalog locks: ${sessions.join('; ')}`] : []),
    ...(prepared.length ? [`prepared transactions holding catalog locks: ${prepared.join('; ')}`] : []),
  ];
  const now = Date.now();
  const sinceMs = n.blocked?.sinceMs ?? now;
  const maxMs = ctx.cfg.maxBlindMs ?? DEFAULT_MAX_BLIND_MS;
  // exiting would not help: a restarted guard could not log in while pg_authid is locked
  const long =
    maxMs > 0 && now - sinceMs >= maxMs
      ? `; blocked longer than --max-blind (${maxMs / 1000} s): guard keeps running, since a guard that exits could not log back in while the lock is held`
      : '';
  const text = `tick blocked by a lock (lock_timeout ${lockTimeoutMs(ctx.cfg.intervalMs)} ms, SQLSTATE 55P03); ${
    held.length ? held.join('; ') : 'no session or prepared transaction holds a lock on a system catalog'
  }${long}`;
  if (n.blocked?.text !== text || now - n.blocked.atMs >= REPEAT_MS) {
    n.blocked = { text, atMs: now, sinceMs };
    ctx.emit({ type: 'error', node: n.node.name, message: text });
  }
}

/** The sessions holding catalog locks: those of revoked or denied roles ended; each said. */
async function endSessionHolders(ctx: GuardContext, n: NodeState, rules: GuardRules): Promise<string[]> {
  const { dryRun } = ctx.cfg;
  const rows = await endHolders(ctx, n, endableOids(n.roles, rules, n));
  const time = new Date().toISOString();
  const operator = operatorOf(ctx, n);
  const entries: GuardAuditEntry[] = [];
  const said: string[] = [];
  for (const h of rows) {
    const role = h.usesysid === null ? undefined : n.roles.get(h.usesysid);
    const why = role ? endReason(role, rules) : null;
    if (!role || !why) {
      said.push(describeHolder(h, role, role ? 'not revoked nor denied: left alone' : 'left alone'));
      continue;
    }
    const kill = holderKill(h, role, why, n.node.name, time, dryRun);
    const key = `${h.pid}:${h.backend_start ?? ''}`;
    const ended = dryRun ? 'would be ended (dry run)' : h.terminated ? 'ended' : "may not be ended by the guard's role";
    said.push(describeHolder(h, role, ended));
    if (n.seen.get(key) === 'killed' || (!h.terminated && !dryRun)) continue;
    n.seen.set(key, 'killed');
    ctx.emit({ type: 'kill', kill });
    if (!dryRun) entries.push(guardAuditEntry(kill, operator, 'done'));
  }
  ctx.audit.write(entries);
  return said;
}

/**
 * The prepared transactions holding catalog locks (no session holds their locks: guardUnblock
 * cannot see them): those preparedVerdict allows rolled back, each said. A dry run only says.
 */
async function endPreparedHolders(ctx: GuardContext, n: NodeState, rules: GuardRules): Promise<string[]> {
  const { dryRun } = ctx.cfg;
  const { rows } = await n.client!.query<GuardPreparedRow>({ ...GUARD_PREPARED, query_timeout: ctx.queryTimeoutMs });
  const said: string[] = [];
  for (const p of rows) {
    const role = n.roles.get(p.owner);
    const v = preparedVerdict(p, role, rules, n);
    if (!v.rollback) {
      said.push(describePrepared(p, role, v.said));
      continue;
    }
    const failed = dryRun ? null : await rollBack(ctx, n, p.gid);
    said.push(describePrepared(p, role, dryRun ? 'would be rolled back (dry run)' : (failed ?? 'rolled back')));
    const key = `prepared:${p.gid}:${p.prepared ?? ''}`;
    if (failed || n.seen.has(key)) continue;
    n.seen.set(key, 'killed');
    const rollback = preparedRollback(p, role!, v.why, n.node.name, new Date().toISOString(), dryRun);
    ctx.emit({ type: 'rollback', rollback });
    if (!dryRun) ctx.audit.write([rollbackAuditEntry(rollback, operatorOf(ctx, n))]);
  }
  return said;
}

/** ROLLBACK PREPARED; null when done, else what failed (a lost connection is thrown). */
async function rollBack(ctx: GuardContext, n: NodeState, gid: string): Promise<string | null> {
  try {
    await n.client!.query({ text: rollbackPrepared(gid), query_timeout: ctx.queryTimeoutMs });
    return null;
  } catch (err) {
    if (n.lostWith || isConnectionLoss(err)) throw err;
    return `ROLLBACK PREPARED failed: ${errText(err)}`;
  }
}

/**
 * The catalog-lock holders, those of `oids` ended by pg_terminate_backend(). That function looks the
 * holder's role up, so when the holder emptied the caches (by changing its own row) before locking
 * pg_authid it waits too; then they get SIGTERM from this host, once proven backends of this server.
 */
async function endHolders(ctx: GuardContext, n: NodeState, oids: string[]): Promise<GuardUnblockRow[]> {
  const query_timeout = ctx.queryTimeoutMs;
  const run = (dryRun: boolean) => n.client!.query<GuardUnblockRow>({ ...guardUnblock({ dryRun }), values: [oids], query_timeout });
  try {
    return (await run(ctx.cfg.dryRun)).rows;
  } catch (err) {
    if (ctx.cfg.dryRun || !isLockTimeout(err)) throw err;
    const { rows } = await run(true);
    const endable = new Set(oids);
    const pids = rows.filter((h) => h.usesysid !== null && endable.has(h.usesysid)).map((h) => h.pid);
    const home = pids.length
      ? await n.client!.query<ServerHome>({ text: DATA_DIRECTORY_SQL, query_timeout }).then(
          (r) => r.rows[0] ?? null,
          () => null,
        )
      : null;
    const sent = new Set(home ? await signalBackends(pids, home) : []);
    return rows.map((h) => ({ ...h, terminated: sent.has(h.pid) }));
  }
}
