// Human rendering for `pgrevoke sessions` and `pgrevoke kill`. JSON output is the documents themselves.
import type { ChalkInstance } from 'chalk';
import { hadQuery, type KillResult, type KillTarget } from '../sessions/kill.js';
import type { SessionsDoc } from '../sessions/list.js';
import { seconds, table, truncate } from './format.js';

export function clientLabel(addr: string | null, port: number | null): string {
  if (addr) return port !== null && port >= 0 ? `${addr}:${port}` : addr;
  return port === -1 ? 'local' : '';
}

export function renderSessions(doc: SessionsDoc, c: ChalkInstance, opts: { limited?: boolean } = {}): string {
  const out: string[] = [];
  out.push(c.bold(`Sessions (${doc.sessions.length})`));
  if (doc.sessions.length)
    out.push(
      table(
        [
          'pid',
          'user',
          'database',
          'client',
          'application',
          'backend type',
          'started',
          'idle for',
          'state',
          'xact age',
          'wait',
          'query_id',
          'query',
        ],
        doc.sessions.map((s) => [
          s.pid,
          s.user ?? (s.userOid !== null ? `oid ${s.userOid}` : ''),
          s.database,
          clientLabel(s.clientAddr, s.clientPort),
          truncate(s.applicationName, 20),
          s.backendType,
          s.backendStart?.slice(0, 19),
          seconds(s.idleSeconds),
          s.state,
          seconds(s.xactAgeSeconds),
          s.waitEvent ? `${s.waitEventType}:${s.waitEvent}` : '',
          s.queryId,
          truncate(s.query, 50),
        ]),
        c,
      ),
    );
  if (doc.hiddenBackends.length) {
    out.push(c.bold(`Hidden backends (${doc.hiddenBackends.length}): post-authentication, role unknown, not yet in pg_stat_activity`));
    out.push(
      table(
        ['pid', 'user', 'seen via', 'started', 'client'],
        doc.hiddenBackends.map((h) => [h.pid, c.yellow('(role unknown)'), h.via, h.backendStart?.slice(0, 19), h.clientAddr]),
        c,
      ),
    );
  }
  if (opts.limited) out.push(c.dim("note: without superuser or pg_read_all_stats, other roles' sessions show no state, client or query"));
  return out.join('\n');
}

/** What is about to be signalled: shown before the confirmation prompt (pids as NODE:PID with several nodes). */
export function renderKillTargets(targets: readonly KillTarget[], c: ChalkInstance): string {
  return table(
    ['pid', 'user', 'database', 'client', 'application', 'backend type', 'state', 'query'],
    targets
      .filter((t) => t.found)
      .map((t) => [
        t.ref,
        t.hidden ? c.yellow('post-authentication, role unknown') : t.user,
        t.database,
        clientLabel(t.clientAddr, t.clientPort),
        truncate(t.applicationName, 20),
        t.backendType,
        t.state,
        truncate(t.query, 50),
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
