// sessions.active: every backend of the role, found by OID (a dropped role's sessions have a NULL usename).
import type { Check, Queryable, SessionRow } from './types.js';
import { queryText } from '../pg/redact.js';

/** Columns shared by every pg_stat_activity listing in pgrevoke (inspect, sessions, cutoff snapshot). */
export const ACTIVITY_COLUMNS = `a.pid, a.datname, a.usename, a.usesysid::text AS usesysid, host(a.client_addr) AS client_addr,
  a.client_port, a.application_name, a.backend_type, a.state, a.backend_start::text AS backend_start,
  a.xact_start::text AS xact_start, a.state_change::text AS state_change, a.wait_event_type, a.wait_event,
  a.query_id::text AS query_id, a.query`;

export interface ActivityRow {
  pid: number;
  datname: string | null;
  usename: string | null;
  usesysid: string | null;
  client_addr: string | null;
  client_port: number | null;
  application_name: string;
  backend_type: string;
  state: string | null;
  backend_start: string | null;
  xact_start: string | null;
  state_change: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  query_id: string | null;
  query: string | null;
}

export function toSession(r: ActivityRow): SessionRow {
  return {
    pid: r.pid,
    database: r.datname,
    user: r.usename,
    userOid: r.usesysid === null ? null : Number(r.usesysid),
    clientAddr: r.client_addr,
    clientPort: r.client_port,
    applicationName: r.application_name,
    backendType: r.backend_type,
    state: r.state,
    backendStart: r.backend_start,
    xactStart: r.xact_start,
    stateChange: r.state_change,
    waitEventType: r.wait_event_type,
    waitEvent: r.wait_event,
    queryId: r.query_id,
    query: queryText(r.query),
  };
}

/** The role's sessions; its OID as an SQL expression (default: parameter $1). */
export function roleSessionsSql(role = '$1::oid'): string {
  return `SELECT ${ACTIVITY_COLUMNS} FROM pg_stat_activity a
WHERE a.usesysid = ${role} AND a.pid <> pg_backend_pid() ORDER BY a.backend_start, a.pid`;
}

export const ROLE_SESSIONS_SQL = roleSessionsSql();

export async function collectSessions(q: Queryable, roleOid: number): Promise<SessionRow[]> {
  const { rows } = await q.query<ActivityRow>(ROLE_SESSIONS_SQL, [roleOid]);
  return rows.map(toSession);
}

export const sessionsCheck: Check = {
  ids: ['sessions.active'],
  evaluate(f) {
    if (f.sessions.length === 0) return [];
    const walsenders = f.sessions.filter((s) => s.backendType === 'walsender').length;
    const pids = f.sessions.map((s) => s.pid);
    return [
      {
        id: 'sessions.active',
        severity: 'critical',
        title: `${f.sessions.length} open session(s) still running as the role`,
        detail:
          `pids ${pids.slice(0, 20).join(', ')}${pids.length > 20 ? ', ...' : ''}` +
          (walsenders ? `; ${walsenders} walsender(s)` : '') +
          '; NOLOGIN and HBA changes do not end sessions that are already open',
        remediation: 'stop new logins first (HBA reject, NOLOGIN), then pg_terminate_backend each pid: pgrevoke cutoff does both',
        exposure: true,
      },
    ];
  },
};
