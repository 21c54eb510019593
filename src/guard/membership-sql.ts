// The SQL of guard --on-membership-revoked (src/guard/membership.ts): the probe of pg_auth_members
// each tick, and the one statement that ends a member's sessions. Fixed texts (prepared once per
// connection); OIDs and names travel as array parameters.
import { literalList } from '../pg/quote.js';
import { CLIENT_BACKEND_TYPES } from '../sessions/filters.js';
import { CLIENT, type GuardSessionColumns } from './sql.js';

/** The node's major version, read once per connection: the probe's text depends on it. */

/** set_option exists from 16 on; before, every membership allows SET ROLE. */
const canSet = (major: number) => (major >= 16 ? 'm.set_option' : 'true');

/**
 * One round trip per tick: a row with the row count of pg_auth_members and a hash of what SET ROLE
 * depends on, then the rows themselves with both names, but only when that hash is not $1 (the one
 * the guard holds; NULL at first): unchanged, the answer is that one short row. The comparison is
 * an InitPlan, so the plan's second scan is not even started then (a filter inside a join ran it).
 * The hash is the XOR of a 64-bit hash of each row's (member, role, grantor, can_set), unique per
 * row, so a change goes unseen only with odds of 2^-64. Measured unchanged, round trip included
 * (PostgreSQL 14 and 18): 0.2 ms at 100 and 1,000 memberships, 0.9 at 10,000, where md5 over the
 * ordered rows took 6, and 24 with set_option read through to_jsonb (one text for every major).
 * bit_xor is 14+.
 */
export function membershipProbe(major: number): { name: string; text: string } {
  const set = canSet(major);
  return {
    name: major >= 16 ? 'pgrevoke_guard_membership_probe' : 'pgrevoke_guard_membership_probe_15',
    text: `WITH h AS MATERIALIZED (
  SELECT count(*)::int AS n,
         COALESCE(bit_xor(hashint8extended((m.member::int8 << 32) | m.roleid::int8, m.grantor::int8 * 2 + (${set})::int)), 0)::text AS hash
  FROM pg_auth_members m)
SELECT h.hash, h.n, NULL::text AS member, NULL::text AS roleid, NULL::bool AS can_set, NULL::text AS member_name, NULL::text AS role_name
FROM h
UNION ALL
SELECT NULL, NULL, m.member::int8::text, m.roleid::int8::text, ${set},
       pg_get_userbyid(m.member)::text, pg_get_userbyid(m.roleid)::text
FROM pg_auth_members m
WHERE (SELECT h.hash FROM h) IS DISTINCT FROM $1::text`,
  };
}

/** A row of membershipProbe: the first kind has hash and n only, the second a membership only. */
export interface MembershipProbeRow {
  hash: string | null;
  n: number | null;
  member: string | null;
  roleid: string | null;
  can_set: boolean | null;
  member_name: string | null;
  role_name: string | null;
}

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
        AND (a.backend_type IN (${literalList(CLIENT_BACKEND_TYPES)}) OR a.backend_type IS NULL)
        AND NOT r.rolsuper
        AND r.rolname::text <> ALL($2::text[])) s
ORDER BY s.pid`,
  };
}

/** A session membershipKill ended, would end (dry run) or may not end. */
export interface MembershipKillRow extends GuardSessionColumns {
  pid: number;
  role: string;
  may_signal: boolean;
  terminated: boolean;
}
