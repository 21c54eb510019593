// pgrevoke kill <pid...>: look every pid up, refuse what must not be signalled, then signal exactly
// those pids, one statement each so that one refusal (42501) does not abort the others.
import type pg from 'pg';
import { collectHiddenBackends } from '../checks/hidden-backends.js';
import { ACTIVITY_COLUMNS, type ActivityRow } from '../checks/sessions.js';
import type { Queryable } from '../checks/types.js';
import { ExitCode, PgrevokeError, usageError } from '../errors.js';
import type { AuditEntry, AuditOperator } from '../record/audit.js';
import { CLIENT_BACKEND_TYPES, IDLE_STATES } from './filters.js';
import { queryText } from '../pg/redact.js';

export const KILL_SCHEMA_VERSION = 1;

export type KillAction = 'terminate' | 'cancel';

/** A pid on one node (pids are per server): what `kill` is asked to signal. */
export interface NodePid {
  /** The node's label, host:port (nodeLabel). */
  node: string;
  pid: number;
}

/** What was known about a pid just before it was signalled. */
export interface KillTarget {
  node: string;
  /** How messages name it: the bare pid, or NODE:PID when several nodes are in play. */
  ref: string;
  pid: number;
  found: boolean;
  /** Past authentication but not (yet) in pg_stat_activity: role unknown. */
  hidden: boolean;
  user: string | null;
  userOid: number | null;
  /** The backend's role is a superuser; null when unknown. */
  userSuperuser: boolean | null;
  database: string | null;
  clientAddr: string | null;
  clientPort: number | null;
  applicationName: string | null;
  /** null when the operator may not see it (not superuser / pg_read_all_stats) or for a hidden backend on PG<=17. */
  backendType: string | null;
  state: string | null;
  query: string | null;
  /** pg_stat_activity.backend_start (text): tells a reused pid from the session an operator picked. */
  backendStart?: string | null;
}

/**
 * done: signalled (terminate: and exited); not_found / gone: no such backend (before / when signalled);
 * unreachable: its node could not be connected to (or looked up), so it was never signalled.
 */
export type KillStatus = 'done' | 'not_found' | 'gone' | 'denied' | 'failed' | 'unreachable';

export interface KillResult {
  node: string;
  /** As in KillTarget.ref; not in the JSON document. */
  ref: string;
  pid: number;
  found: boolean;
  hidden: boolean;
  action: KillAction;
  ok: boolean;
  user: string | null;
  database: string | null;
  error?: string;
  /** Not in the JSON document: drives the exit code and the audit log. */
  status: KillStatus;
  /** When the signal was sent (ISO); null when nothing was sent. */
  at: string | null;
  /** The server's own words (a WARNING or error), when there were any. */
  serverMessage: string | null;
  /** cancel: pg_stat_activity.state read by the statement that sent the cancel; null when not visible (or not sent). */
  state?: string | null;
}

const MAX_PID = 2 ** 31 - 1;

/** How messages name a pid: bare with one node, NODE:PID with several. */
export function pidRef(node: string, pid: number, qualify: boolean): string {
  return qualify ? `${node}:${pid}` : String(pid);
}

/** The node a NODE:PID names: its exact label, or for an IPv6 host the bracketed form `[::1]:5432`. */
function matchNode(text: string, nodes: readonly string[]): string | undefined {
  if (nodes.includes(text)) return text;
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(text);
  if (m) return nodes.find((n) => n === `${m[1]}:${m[2]}`);
  return undefined;
}

/**
 * `PID` or `NODE:PID` (split at the LAST ':', so that `127.0.0.1:5432:1234`, `::1:5432:99` and
 * `[::1]:5432:99` work), each once, in the order given. `nodes` are the labels (host:port) of the
 * nodes connected to, at least one; with several, every pid must name its node, since pids are per server.
 */
export function parseNodePids(args: readonly string[], nodes: readonly string[]): NodePid[] {
  if (args.length === 0) throw usageError('name at least one pid', 'pgrevoke sessions lists them');
  if (nodes.length === 0) throw new PgrevokeError('no node to act on');
  const list = nodes.join(', ');
  const out: NodePid[] = [];
  for (const raw of args) {
    const t = String(raw).trim();
    const i = t.lastIndexOf(':');
    const pidText = i < 0 ? t : t.slice(i + 1);
    if (!/^\d+$/.test(pidText) || Number(pidText) < 1 || Number(pidText) > MAX_PID)
      throw usageError(`invalid pid: "${raw}"`, `a pid is a positive integer${nodes.length > 1 ? ', named as NODE:PID' : ''}`);
    const pid = Number(pidText);
    let node: string;
    if (i < 0) {
      if (nodes.length > 1)
        throw usageError(
          `pid ${pid} is ambiguous: qualify it as NODE:PID (nodes: ${list})`,
          `pids are per server; e.g. ${nodes[0]}:${pid}`,
        );
      node = nodes[0]!;
    } else {
      const nodeText = t.slice(0, i);
      const found = matchNode(nodeText, nodes);
      if (found === undefined)
        throw usageError(
          `unknown node "${nodeText}" in "${raw}" (nodes: ${list})`,
          'a node is named host:port, exactly as --target (or the connection options) give it',
        );
      node = found;
    }
    if (!out.some((o) => o.node === node && o.pid === pid)) out.push({ node, pid });
  }
  return out;
}

const LOOKUP_SQL = `SELECT ${ACTIVITY_COLUMNS}, r.rolsuper AS user_super
FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.pid = ANY($1::int[]) AND a.pid <> pg_backend_pid()`;

/** Each pid (of node `at.node`) as pg_stat_activity and the hidden-backend scan see it now, in the order given. */
export async function lookupTargets(
  q: Queryable,
  pids: readonly number[],
  major: number,
  at: { node: string; qualify?: boolean },
): Promise<KillTarget[]> {
  const { rows } = await q.query<ActivityRow & { user_super: boolean | null }>(LOOKUP_SQL, [pids]);
  const byPid = new Map(rows.map((r) => [r.pid, r]));
  const hidden = new Set((await collectHiddenBackends(q, major)).map((h) => h.pid));
  return pids.map((pid) => {
    const r = byPid.get(pid);
    const isHidden = hidden.has(pid);
    return {
      node: at.node,
      ref: pidRef(at.node, pid, Boolean(at.qualify)),
      pid,
      found: Boolean(r) || isHidden,
      hidden: isHidden,
      user: isHidden ? null : (r?.usename ?? null),
      userOid: isHidden || !r?.usesysid ? null : Number(r.usesysid),
      userSuperuser: isHidden ? null : (r?.user_super ?? null),
      database: r?.datname ?? null,
      clientAddr: r?.client_addr ?? null,
      clientPort: r?.client_port ?? null,
      applicationName: r?.application_name ?? null,
      backendType: isHidden ? 'client backend' : (r?.backend_type ?? null),
      state: r?.state ?? null,
      query: queryText(r?.query ?? null),
      backendStart: r?.backend_start ?? null,
    };
  });
}

/** Non-client backends (checkpointer, autovacuum, replication launcher...) are signalled only with --force. */
export function refuseNonClient(targets: readonly KillTarget[], force: boolean): PgrevokeError | null {
  if (force) return null;
  const bad = targets.filter(
    (t) => t.found && t.backendType !== null && !(CLIENT_BACKEND_TYPES as readonly string[]).includes(t.backendType),
  );
  if (bad.length === 0) return null;
  const what = bad.map((t) => `pid ${t.ref} (${t.backendType})`).join(', ');
  return usageError(
    `refusing to signal ${what}: not a client session; nothing was signalled`,
    'these are server processes, not sessions; pass --force to signal them anyway (PostgreSQL restarts most of them, and ignores signals to the checkpointer and other auxiliary processes)',
  );
}

function describe(t: KillTarget): string {
  if (t.hidden) return 'a backend in the post-authentication window, role unknown';
  if (t.userOid === null) return `a ${t.backendType ?? 'backend'} that runs without a role`;
  return `a session of ${t.userSuperuser ? 'superuser ' : ''}role ${JSON.stringify(t.user ?? `oid ${t.userOid}`)}`;
}

/** What the operator needs to signal this backend, in one sentence (postgres-facts.md, section 4). */
export function permissionMessage(t: KillTarget, action: KillAction): string {
  const head = `permission denied to ${action} pid ${t.ref} (${describe(t)})`;
  if (t.hidden || t.userOid === null) return `${head}: only a superuser may signal it`;
  if (t.userSuperuser) return `${head}: only a superuser may signal a superuser's backend`;
  const role = JSON.stringify(t.user ?? `oid ${t.userOid}`);
  return `${head}: it takes a superuser, the role ${role} itself or a member of it, or a member of pg_signal_backend`;
}

export interface SignalOptions {
  action: KillAction;
  /** terminate: wait this long for the process to exit (PG14+); 0 = do not wait. */
  waitMs: number;
  major: number;
}

/**
 * The state is read in the statement that cancels, before the cancel is sent (the subquery's row is
 * formed first; OFFSET 0 keeps it a subquery): a cancelled query leaves its session idle at once,
 * and "it was idle" must not be said of the query just cancelled.
 */
const CANCEL_SQL = `SELECT s.state, pg_catalog.pg_cancel_backend($1::int) AS ok
FROM (SELECT (SELECT a.state FROM pg_catalog.pg_stat_activity a WHERE a.pid = $1::int) AS state OFFSET 0) s`;

/**
 * Whether the session was running a query when it was cancelled: false when idle, idle in a
 * transaction, or still logging in (a hidden backend has run none); null when its state is not
 * visible to the operator (no pg_read_all_stats) or not kept (track_activities off).
 */
export function hadQuery(r: Pick<KillResult, 'state' | 'hidden'>): boolean | null {
  if (r.state === 'active' || r.state === 'fastpath function call') return true;
  if (r.state === 'starting' || (IDLE_STATES as readonly string[]).includes(r.state ?? '')) return false;
  return r.hidden && !r.state ? false : null;
}

function signalSql(o: SignalOptions): { text: string; values: (pid: number) => unknown[] } {
  if (o.action === 'cancel') return { text: CANCEL_SQL, values: (pid) => [pid] };
  if (o.major >= 14) return { text: 'SELECT pg_terminate_backend($1::int, $2::bigint) AS ok', values: (pid) => [pid, o.waitMs] };
  return { text: 'SELECT pg_terminate_backend($1::int) AS ok', values: (pid) => [pid] };
}

const NOT_A_BACKEND = /is not a PostgreSQL (server|backend) process/i;

/** Signal each found target, one statement each; missing ones are reported, never signalled. */
export async function signalTargets(client: pg.Client, targets: readonly KillTarget[], o: SignalOptions): Promise<KillResult[]> {
  const sql = signalSql(o);
  const results: KillResult[] = [];
  for (const t of targets) {
    const base = {
      node: t.node,
      ref: t.ref,
      pid: t.pid,
      found: t.found,
      hidden: t.hidden,
      action: o.action,
      user: t.user,
      database: t.database,
    };
    if (!t.found) {
      results.push({ ...base, ok: false, error: `session not found: pid ${t.ref}`, status: 'not_found', at: null, serverMessage: null });
      continue;
    }
    const warnings: string[] = [];
    const onNotice = (n: { severity?: string; message?: string }) => {
      if (n.severity === 'WARNING' || n.severity === 'ERROR') warnings.push(n.message ?? '');
    };
    client.on('notice', onNotice);
    const at = new Date().toISOString();
    try {
      const { rows } = await client.query<{ ok: boolean; state?: string | null }>(sql.text, sql.values(t.pid));
      const warning = warnings.join('; ') || null;
      if (rows[0]?.ok) {
        const state = o.action === 'cancel' ? { state: rows[0].state ?? null } : {};
        results.push({ ...base, ok: true, status: 'done', at, serverMessage: warning, ...state });
      } else if (warning && /permission|must be (a superuser|a member)/i.test(warning)) {
        results.push({ ...base, ok: false, error: permissionMessage(t, o.action), status: 'denied', at, serverMessage: warning });
      } else if (warning && NOT_A_BACKEND.test(warning)) {
        // the pid ended in between, or it is an auxiliary process (checkpointer...) that SQL cannot signal
        const still = await client.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1::int', [t.pid]);
        results.push(
          still.rows.length
            ? {
                ...base,
                ok: false,
                error: `pid ${t.ref} (${t.backendType ?? 'unknown type'}) cannot be signalled from SQL`,
                status: 'failed',
                at,
                serverMessage: warning,
              }
            : {
                ...base,
                ok: false,
                error: `session not found: pid ${t.ref} ended before it was signalled`,
                status: 'gone',
                at,
                serverMessage: warning,
              },
        );
      } else if (warning && /did not terminate within/i.test(warning)) {
        results.push({
          ...base,
          ok: false,
          error: `pid ${t.ref} was signalled but had not exited after ${o.waitMs} ms`,
          status: 'failed',
          at,
          serverMessage: warning,
        });
      } else {
        results.push({
          ...base,
          ok: false,
          error: warning ?? `pg_${o.action === 'cancel' ? 'cancel' : 'terminate'}_backend returned false`,
          status: 'failed',
          at,
          serverMessage: warning,
        });
      }
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === '42501')
        results.push({ ...base, ok: false, error: permissionMessage(t, o.action), status: 'denied', at, serverMessage: e.message ?? null });
      else results.push({ ...base, ok: false, error: e.message ?? String(err), status: 'failed', at, serverMessage: e.message ?? null });
    } finally {
      client.off('notice', onNotice);
    }
  }
  return results;
}

/** The pids of a node that could not be reached (or looked up): each fails, none was signalled. */
export function unreachableResults(
  pids: readonly number[],
  at: { node: string; qualify?: boolean },
  action: KillAction,
  reason: string,
): KillResult[] {
  return pids.map((pid) => {
    const ref = pidRef(at.node, pid, Boolean(at.qualify));
    return {
      node: at.node,
      ref,
      pid,
      found: false,
      hidden: false,
      action,
      ok: false,
      user: null,
      database: null,
      error: `pid ${ref} was not signalled: node ${at.node} is unreachable: ${reason}`,
      status: 'unreachable',
      at: null,
      serverMessage: null,
    };
  });
}

/**
 * 0 every pid signalled; 1 some pid did not exist (the rest were); 2 privilege missing, or a node
 * unreachable, and nothing was signalled; 3 a signal failed or timed out, or privilege was missing (or a
 * node unreachable) for some pids after others were signalled.
 */
export function killExitCode(results: readonly KillResult[]): ExitCode {
  const has = (s: KillStatus) => results.some((r) => r.status === s);
  if (has('failed')) return ExitCode.PARTIAL;
  if (has('denied') || has('unreachable')) return has('done') ? ExitCode.PARTIAL : ExitCode.USAGE;
  if (has('not_found') || has('gone')) return ExitCode.EXPOSED;
  return ExitCode.OK;
}

/**
 * The JSON document: `{ schemaVersion, results }`, one result per pid named, each with its node
 * (host:port); a cancel's result also says what was running: `state` and `hadQuery` (see hadQuery).
 */
export function killDoc(results: readonly KillResult[]) {
  return {
    schemaVersion: KILL_SCHEMA_VERSION,
    results: results.map((r) => ({
      node: r.node,
      pid: r.pid,
      found: r.found,
      hidden: r.hidden,
      action: r.action,
      ok: r.ok,
      user: r.user,
      database: r.database,
      ...(r.error !== undefined ? { error: r.error } : {}),
      ...(r.action === 'cancel' ? { state: r.state ?? null, hadQuery: r.status === 'done' ? hadQuery(r) : null } : {}),
    })),
  };
}

/** The session an audit line is about (the shared AuditEntry names only its role, in `target`). */
export interface AuditSession {
  pid: number;
  user: string | null;
  database: string | null;
  client: string | null;
  application: string | null;
  query: string | null;
}

export type KillAuditEntry = AuditEntry & { session: AuditSession };

/**
 * One line per pid a signal was sent to (denied attempts included), on the result's node; missing pids
 * and pids of unreachable nodes are not actions. `operator` may differ per node (its current_user).
 */
export function killAuditEntries(
  results: readonly KillResult[],
  targets: readonly KillTarget[],
  who: { operator: AuditOperator | ((node: string) => AuditOperator); note?: string | null },
): KillAuditEntry[] {
  const key = (node: string, pid: number) => `${node}\n${pid}`;
  const byPid = new Map(targets.map((t) => [key(t.node, t.pid), t]));
  const out: KillAuditEntry[] = [];
  for (const r of results) {
    if (r.at === null) continue;
    const t = byPid.get(key(r.node, r.pid));
    out.push({
      time: r.at,
      node: r.node,
      operator: typeof who.operator === 'function' ? who.operator(r.node) : who.operator,
      // the login role; '' when unknown (a hidden backend, or one without a role): no role has an empty name
      target: r.user ?? '',
      action: r.action,
      reason: 'admin_kill',
      result: r.ok ? 'done' : 'failed',
      detail: r.ok ? r.serverMessage : [r.error, r.serverMessage].filter(Boolean).join(': server said: ') || null,
      ...(who.note ? { note: who.note } : {}),
      session: {
        pid: r.pid,
        user: r.user,
        database: r.database,
        client: t?.clientAddr
          ? `${t.clientAddr}${t.clientPort !== null && t.clientPort >= 0 ? `:${t.clientPort}` : ''}`
          : t?.clientPort === -1
            ? 'local'
            : null,
        application: t?.applicationName ?? null,
        query: queryText(t?.query ?? null),
      },
    });
  }
  return out;
}
