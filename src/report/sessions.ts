// Human rendering for `pgrevoke sessions` and `pgrevoke kill`. JSON output is the documents themselves.
import type { ChalkInstance } from 'chalk';
import { hadQuery, type KillResult, type KillTarget } from '../sessions/kill.js';
import type { SessionsDoc } from '../sessions/list.js';
import { fitText, seconds, table, type Column } from './format.js';

export function clientLabel(addr: string | null, port: number | null): string {
  if (addr) return port !== null && port >= 0 ? `${addr}:${port}` : addr;
  return port === -1 ? 'local' : '';
}

// On a terminal too narrow for the whole table (see table() in format.ts), query, application, wait,
// user and database are cut with an ellipsis first; then columns go in this order: query_id, backend
// type, wait, started, xact age, application, idle for, client, database, state, query. pid and user stay.
const SESSION_COLUMNS: Column[] = [
  { head: 'pid' },
  { head: 'user', shrink: 8 },
  { head: 'database', shrink: 8, drop: 9 },
  { head: 'client', drop: 8 },
  { head: 'application', shrink: 10, cap: 20, drop: 6 },
  { head: 'backend type', drop: 2 },
  { head: 'started', drop: 4 },
  { head: 'idle for', drop: 7 },
  { head: 'state', drop: 10 },
  { head: 'xact age', drop: 5 },
  { head: 'wait', shrink: 10, drop: 3 },
  { head: 'query_id', drop: 1 },
  { head: 'query', shrink: 20, cap: 50, drop: 11 },
];

// Hidden backends: seen via, started, client go in that order.
const HIDDEN_COLUMNS: Column[] = [
  { head: 'pid' },
  { head: 'user' },
  { head: 'seen via', drop: 1 },
  { head: 'started', drop: 2 },
  { head: 'client', drop: 3 },
];

/** The sessions table's columns of these names, with their cuts and places in its drop order. */
const sessionColumns = (...heads: string[]): Column[] => heads.map((h) => SESSION_COLUMNS.find((c) => c.head === h)!);

export function renderSessions(doc: SessionsDoc, c: ChalkInstance, opts: { limited?: boolean } = {}): string {
  const out: string[] = [];
  out.push(c.bold(`Sessions (${doc.sessions.length})`));
  if (doc.sessions.length)
    out.push(
      table(
        SESSION_COLUMNS,
        doc.sessions.map((s) => [
          s.pid,
          s.user ?? (s.userOid !== null ? `oid ${s.userOid}` : ''),
          s.database,
          clientLabel(s.clientAddr, s.clientPort),
          s.applicationName,
          s.backendType,
          s.backendStart?.slice(0, 19),
          seconds(s.idleSeconds),
          s.state,
          seconds(s.xactAgeSeconds),
          s.waitEvent ? `${s.waitEventType}:${s.waitEvent}` : '',
          s.queryId,
          s.query,
        ]),
        c,
      ),
    );
  if (doc.hiddenBackends.length) {
    out.push(c.bold(`Hidden backends (${doc.hiddenBackends.length}): post-authentication, role unknown, not yet in pg_stat_activity`));
    out.push(
      table(
        HIDDEN_COLUMNS,
        doc.hiddenBackends.map((h) => [h.pid, c.yellow('(role unknown)'), h.via, h.backendStart?.slice(0, 19), h.clientAddr]),
        c,
      ),
    );
  }
  if (opts.limited) out.push(c.dim("note: without superuser or pg_read_all_stats, other roles' sessions show no state, client or query"));
  return fitText(out.join('\n'));
}

/** What is about to be signalled: shown before the confirmation prompt (pids as NODE:PID with several nodes). */
export function renderKillTargets(targets: readonly KillTarget[], c: ChalkInstance): string {
  return table(
    sessionColumns('pid', 'user', 'database', 'client', 'application', 'backend type', 'state', 'query'),
    targets
      .filter((t) => t.found)
      .map((t) => [
        t.ref,
        t.hidden ? c.yellow('post-authentication, role unknown') : t.user,
        t.database,
        clientLabel(t.clientAddr, t.clientPort),
        t.applicationName,
        t.backendType,
        t.state,
        t.query,
      ]),
    c,
  );
}

/**
 * A cancel ends a running query only: from the state its statement read, say which it was. An idle
 * session's cancel is ignored by the server, and an idle transaction keeps its locks.
 */
function cancelLine(r: KillResult, pid: string, c: ChalkInstance): string {
  const ran = hadQuery(r);
  if (ran === true) return `${c.green('ok')} cancelled the query of ${pid}`;
  if (ran === null)
    return `${c.green('ok')} sent a cancel to ${pid}; its state is not visible to this operator, so whether a query was running is unknown`;
  const was = r.state ?? 'still logging in';
  const open = r.state?.startsWith('idle in transaction') ? '; the transaction stays open (terminate the session to end it)' : '';
  return `${c.yellow('nothing to cancel:')} ${pid} was ${was}, no query was running${open}`;
}

/** One line per pid: successes for stdout; failures are returned apart (they go to stderr). */
export function renderKillResults(results: readonly KillResult[], c: ChalkInstance): { done: string[]; failed: string[] } {
  const done: string[] = [];
  const failed: string[] = [];
  for (const r of results) {
    const who = r.hidden ? 'post-authentication, role unknown' : [r.user, r.database].filter(Boolean).join('@');
    const pid = `pid ${r.ref}${who ? ` (${who})` : ''}`;
    if (!r.ok) failed.push(r.error ?? `pid ${r.ref}: failed`);
    else done.push(r.action === 'cancel' ? cancelLine(r, pid, c) : `${c.green('ok')} terminated ${pid}`);
  }
  return { done, failed };
}
