// pgrevoke sessions: one read-only snapshot of every session on the server, plus the hidden
// post-authentication backends (postgres-facts.md, section 3), which no filter can rule out.
import { collectHiddenBackends } from '../checks/hidden-backends.js';
import { toSession, type ActivityRow } from '../checks/sessions.js';
import type { HiddenBackend, Queryable, SessionRow } from '../checks/types.js';
import { buildSessionsQuery, clientMatches, type SessionFilters } from './filters.js';

export const SESSIONS_SCHEMA_VERSION = 1;

export interface ListedSession extends SessionRow {
  /** Seconds since state_change while idle / idle in transaction; null in other states. */
  idleSeconds: number | null;
  /** Seconds since xact_start; null outside a transaction. */
  xactAgeSeconds: number | null;
  hidden: false;
}

export interface ListedHiddenBackend extends HiddenBackend {
  hidden: true;
  /** Always null: SQL cannot tell which role a backend in the post-authentication window belongs to. */
  user: null;
}

export interface SessionsDoc {
  schemaVersion: number;
  sessions: ListedSession[];
  hiddenBackends: ListedHiddenBackend[];
}

export interface ListOptions {
  /** server_version_num / 10000 (decides how hidden backends are found). */
  major: number;
}

type Row = ActivityRow & { idle_seconds: number | null; xact_seconds: number | null };

export async function listSessions(q: Queryable, filters: SessionFilters, opts: ListOptions): Promise<SessionsDoc> {
  const { text, values } = buildSessionsQuery(filters);
  const { rows } = await q.query<Row>(text, values);
  const hidden = await collectHiddenBackends(q, opts.major);
  const hiddenPids = new Set(hidden.map((h) => h.pid));
  return {
    schemaVersion: SESSIONS_SCHEMA_VERSION,
    // PG18 lists a starting backend in pg_stat_activity too: it is shown once, as hidden
    sessions: rows
      .filter((r) => !hiddenPids.has(r.pid))
      .map((r) => ({ ...toSession(r), idleSeconds: r.idle_seconds, xactAgeSeconds: r.xact_seconds, hidden: false as const })),
    // role, database and state are unknown: only a known client address can rule one out
    hiddenBackends: hidden
      .filter((h) => h.clientAddr === null || clientMatches(h.clientAddr, filters.clients))
      .sort((a, b) => a.pid - b.pid)
      .map((h) => ({ ...h, hidden: true as const, user: null })),
  };
}

/** Whether the operator sees every session's details (superuser or pg_read_all_stats). */
export async function seesAllActivity(q: Queryable): Promise<boolean> {
  const { rows } = await q.query<{ ok: boolean }>(`SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS ok`);
  return rows[0]?.ok ?? false;
}
