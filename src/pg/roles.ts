// Looking a role up by its exact name (as in pg_roles.rolname, never folded). Kept light: cutoff's
// critical path imports it before containment.
import type { Queryable, RoleInfo } from '../checks/types.js';

const ROLE_COLUMNS = `oid::text AS oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
       rolbypassrls, rolconnlimit, rolvaliduntil::text AS rolvaliduntil,
       (rolvaliduntil IS NOT NULL AND rolvaliduntil < now()) AS expired`;

/** The role by its exact name, an SQL expression (default: parameter $1). */
export const roleByNameSql = (name = '$1') => `SELECT ${ROLE_COLUMNS} FROM pg_roles WHERE rolname = ${name}`;
export const ROLE_SQL = roleByNameSql();
export const ROLE_BY_OID_SQL = `SELECT ${ROLE_COLUMNS} FROM pg_roles WHERE oid = $1::oid`;

export interface RoleRow {
  oid: string;
  rolname: string;
  rolsuper: boolean;
  rolinherit: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolcanlogin: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolconnlimit: number;
  rolvaliduntil: string | null;
  expired: boolean;
}

export function toRoleInfo(r: RoleRow): RoleInfo {
  return {
    oid: Number(r.oid),
    name: r.rolname,
    superuser: r.rolsuper,
    inherit: r.rolinherit,
    createRole: r.rolcreaterole,
    createDb: r.rolcreatedb,
    canLogin: r.rolcanlogin,
    replication: r.rolreplication,
    bypassRls: r.rolbypassrls,
    connectionLimit: r.rolconnlimit,
    validUntil: r.rolvaliduntil,
    expired: r.expired,
  };
}

/** The role by its exact name, or null. */
export async function findRole(q: Queryable, name: string): Promise<RoleInfo | null> {
  const { rows } = await q.query<RoleRow>(ROLE_SQL, [name]);
  return rows[0] ? toRoleInfo(rows[0]) : null;
}
