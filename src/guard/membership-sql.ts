// The SQL of guard --on-membership-revoked (src/guard/membership.ts): the probe of pg_auth_members
// each tick, and the one statement that ends a member's sessions. Fixed texts (prepared once per
// connection); OIDs and names travel as array parameters.
import { CLIENT_BACKEND_TYPES } from '../sessions/filters.js';

/**
 * set_option exists from 16 on; before, every membership allows SET ROLE. Read through to_jsonb so
 * that one text serves every major (a missing column would be a parse error, and the guard does
 * not carry the server's version to its tick).
 */
const CAN_SET = `COALESCE((to_jsonb(m) ->> 'set_option')::bool, true)`;

/**
 * One round trip per tick. Always one row with the md5 of what SET ROLE depends on (member, role,
 * can_set, in order) and the row count; the rows themselves, with both names, only when that hash
 * is not $1 (the one the guard holds; NULL at first). Unchanged, the answer is one short row.
 */
export const MEMBERSHIP_PROBE = {
  name: 'pgrevoke_guard_membership_probe',
  text: `WITH m AS (SELECT m.member::int8 AS member, m.roleid::int8 AS roleid, ${CAN_SET} AS can_set FROM pg_auth_members m),
h AS (SELECT count(*)::int AS n,
             md5(COALESCE(string_agg(m.member || ':' || m.roleid || ':' || m.can_set, ',' ORDER BY m.member, m.roleid, m.can_set), '')) AS hash
      FROM m)
SELECT h.hash, h.n, e.member, e.roleid, e.can_set, e.member_name, e.role_name
FROM h
LEFT JOIN LATERAL (SELECT m.member::text AS member, m.roleid::text AS roleid, m.can_set,
                          pg_get_userbyid(m.member::oid)::text AS member_name, pg_get_userbyid(m.roleid::oid)::text AS role_name
                   FROM m WHERE h.hash IS DISTINCT FROM $1::text) e ON true
ORDER BY e.member::int8, e.roleid::int8`,
};

/** A row of MEMBERSHIP_PROBE: member and the rest are null when the hash is unchanged (or the catalog is empty). */
export interface MembershipProbeRow {
  hash: string;
  n: number;
  member: string | null;
  roleid: string | null;
  can_set: boolean | null;
  member_name: string | null;
  role_name: string | null;
}

const list = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

/** `addr:port`, `[v6]:port`, `local` or null: the guard tick's client column (src/guard/sql.ts), for the same events. */
const CLIENT = `CASE WHEN a.client_port = -1 THEN 'local'
              WHEN a.client_addr IS NULL THEN NULL
              WHEN family(a.client_addr) = 6 THEN '[' || host(a.client_addr) || ']:' || a.client_port
              ELSE host(a.client_addr) || ':' || a.client_port END`;

/**
 * Every session of the login roles in $1 (OIDs), ended in the same statement: pg_stat_activity
 * shows a session's login role, never the role it SET ROLE to, so every session of a member that
 * lost a membership may be a holdover. Not the guard's own, not an excluded role's ($2 names), not
 * a superuser's (it may SET ROLE to anything: ending it gains nothing), not a dropped role's (the
 * tick ends those as role_dropped); client backends and walsenders only, as the tick. Terminated
 * only where the guard's role may signal (otherwise pg_terminate_backend raises and aborts the
 * statement); a dry run has no pg_terminate_backend in its text.
 */
export function membershipKill(opts: { dryRun: boolean }): { name: string; text: string } {
  const terminated = opts.dryRun ? 'false' : 'CASE WHEN s.may_signal THEN pg_terminate_backend(s.pid) ELSE false END';
  return {
    name: opts.dryRun ? 'pgrevoke_guard_membership_kill_dry' : 'pgrevoke_guard_membership_kill',
    text: `SELECT s.*, ${terminated} AS terminated
FROM (SELECT a.pid, r.rolname::text AS role, a.usesysid::int8::text AS usesysid, a.datname::text AS database, ${CLIENT} AS client,
             a.application_name AS application, a.backend_type, a.state, a.backend_start::text AS backend_start, a.query,
             me.su OR me.sig OR pg_has_role(r.oid, 'USAGE') AS may_signal
      FROM pg_stat_activity a
      JOIN pg_roles r ON r.oid = a.usesysid
      CROSS JOIN (SELECT current_setting('is_superuser') = 'on' AS su, pg_has_role('pg_signal_backend', 'USAGE') AS sig) me
      WHERE a.usesysid::int8 = ANY($1::int8[])
        AND a.pid <> pg_backend_pid()
        AND (a.backend_type IN (${list(CLIENT_BACKEND_TYPES)}) OR a.backend_type IS NULL)
        AND NOT r.rolsuper
        AND r.rolname::text <> ALL($2::text[])) s
ORDER BY s.pid`,
  };
}

/** A session membershipKill ended, would end (dry run) or may not end. */
export interface MembershipKillRow {
  pid: number;
  role: string;
  usesysid: string;
  database: string | null;
  client: string | null;
  application: string | null;
  backend_type: string | null;
  state: string | null;
  backend_start: string | null;
  query: string | null;
  may_signal: boolean;
  terminated: boolean;
}
