// roles.administered / roles.created_unknown: a CREATEROLE target can make fresh LOGIN roles during
// the incident and walk out through them once it is NOLOGIN itself. PostgreSQL 16+ records this:
// CREATE ROLE by a non-superuser grants the creator ADMIN OPTION on the new role (grantor the
// bootstrap superuser). Before 16 nothing records who created a role.
import type { AdministeredRole, AdministeredRoles, Check, Finding, Queryable, RoleFacts } from './types.js';

/** Roles below this OID are created by initdb (the bootstrap superuser, pg_* roles): never a target. */
export const FIRST_NORMAL_OID = 16384;
const BOOTSTRAP_SUPERUSER_OID = 10;

// ADMIN OPTION rows from the target down: a role it administers may administer (or have created) more.
/** The roles the target administers; its OID as an SQL expression (default: parameter $1). */
export function administeredRolesSql(target = '$1::oid'): string {
  return `
WITH RECURSIVE adm(roleid, member, grantor, depth, seen) AS (
  SELECT m.roleid, m.member, m.grantor, 1, ARRAY[m.member, m.roleid]
    FROM pg_catalog.pg_auth_members m WHERE m.member = ${target} AND m.admin_option
  UNION ALL
  SELECT m.roleid, m.member, m.grantor, a.depth + 1, a.seen || m.roleid
    FROM pg_catalog.pg_auth_members m JOIN adm a ON m.member = a.roleid
   WHERE m.admin_option AND NOT m.roleid = ANY (a.seen) AND a.depth < 16
)
SELECT DISTINCT ON (r.oid) r.oid::int AS oid, r.rolname::text AS name, v.rolname::text AS via,
       g.rolname::text AS grantor, a.grantor::int AS grantor_oid, r.rolcanlogin AS can_login,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity s WHERE s.usesysid = r.oid)::int AS sessions
  FROM adm a
  JOIN pg_catalog.pg_roles r ON r.oid = a.roleid
  JOIN pg_catalog.pg_roles v ON v.oid = a.member
  LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantor
 WHERE r.oid >= ${FIRST_NORMAL_OID} AND r.oid <> ${target}
 ORDER BY r.oid, a.depth`;
}

const SQL = administeredRolesSql();

interface AdministeredRow {
  oid: number;
  name: string;
  via: string;
  grantor: string | null;
  grantor_oid: number | null;
  can_login: boolean;
  sessions: number;
}

export async function collectAdministeredRoles(q: Queryable, roleOid: number, major: number): Promise<AdministeredRoles> {
  return toAdministeredRoles((await q.query<AdministeredRow>(SQL, [roleOid])).rows, major);
}

/** administeredRolesSql()'s rows as facts. */
export function toAdministeredRoles(result: readonly object[], major: number): AdministeredRoles {
  const rows = result as AdministeredRow[];
  return {
    recorded: major >= 16,
    roles: rows.map((r) => ({
      oid: r.oid,
      name: r.name,
      via: r.via,
      grantor: r.grantor,
      likelyCreated: major >= 16 && r.grantor_oid === BOOTSTRAP_SUPERUSER_OID,
      canLogin: r.can_login,
      sessions: r.sessions,
    })),
  };
}

/** A way out: the role can log in, or is already logged in. */
export const isOpen = (r: AdministeredRole): boolean => r.canLogin || r.sessions > 0;

function line(r: AdministeredRole): string {
  const state = [r.canLogin ? 'LOGIN' : 'NOLOGIN', `${r.sessions} session(s)`].join(', ');
  const grant = `ADMIN OPTION held by ${JSON.stringify(r.via)}${r.grantor === null ? '' : `, granted by ${r.grantor}`}`;
  return `- ${JSON.stringify(r.name)}: ${state}; ${grant}${r.likelyCreated ? ' (the grant CREATE ROLE makes: created by it)' : ''}`;
}

function administeredFinding(f: RoleFacts): Finding | null {
  const roles = f.administeredRoles.roles;
  if (!roles.length) return null;
  const open = roles.filter(isOpen);
  const target = JSON.stringify(f.role.name);
  return {
    id: 'roles.administered',
    severity: open.some((r) => r.sessions > 0) ? 'critical' : open.length ? 'high' : 'low',
    title: `${f.role.name} administers ${roles.length} role(s)${open.length ? `, ${open.length} of them a way in (LOGIN or sessions)` : ''}`,
    detail: [
      'Roles it holds ADMIN OPTION on (CREATE ROLE gives the creator exactly that on PostgreSQL 16+): it knows the passwords of those it created, and with CREATEROLE can set any of theirs, so it can log in as them after its own NOLOGIN:',
      ...roles.map(line),
    ].join('\n'),
    remediation: open.length
      ? `pgrevoke cutoff ${target} --include-created contains them with the role (or cut each off by name)`
      : 'none can log in now; review them before re-enabling any',
    exposure: open.length > 0,
  };
}

function unknownFinding(f: RoleFacts): Finding | null {
  const r = f.role;
  const pre16 = !f.administeredRoles.recorded && (r.createRole || r.superuser);
  if (!pre16 && !r.superuser) return null;
  return {
    id: 'roles.created_unknown',
    severity: 'medium',
    title: `which roles ${r.name} created cannot be known`,
    detail: pre16
      ? `PostgreSQL ${f.server.major} does not record who created a role (16+ records the creator's ADMIN OPTION); before 16 a CREATEROLE role can also ALTER every non-superuser role, its password included`
      : "a superuser's CREATE ROLE leaves no record of its creator",
    remediation: `review the roles newer than it (OIDs grow): SELECT oid, rolname, rolcanlogin FROM pg_roles WHERE oid > ${r.oid} ORDER BY oid; and cut off those it made`,
    exposure: false,
  };
}

export const administeredRolesCheck: Check = {
  ids: ['roles.administered', 'roles.created_unknown'],
  evaluate(f) {
    return [administeredFinding(f), unknownFinding(f)].filter((x): x is Finding => x !== null);
  },
};
