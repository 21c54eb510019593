// persistence.default_acl: default privileges set FOR ROLE the role. Every object it creates
// later (through its SECURITY DEFINER routines, or a member doing SET ROLE) is granted to
// these grantees automatically.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { bool, listing, mapOutsideQuotes, optStr, plural, remediationByDatabase, str, strs } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

// The role's own entry (the default owner privileges) is not a grant to anyone else: left out.
const SQL = `
SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text AS role,
       n.nspname::text AS schema,
       d.defaclobjtype::text AS objtype,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS grantee,
       pg_catalog.array_agg(a.privilege_type ORDER BY a.privilege_type)::text[] AS privileges,
       pg_catalog.bool_or(a.is_grantable) AS grantable
  FROM pg_catalog.pg_default_acl d
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
 CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
 WHERE d.defaclrole = $1 AND a.grantee <> d.defaclrole
 GROUP BY d.defaclrole, n.nspname, d.defaclobjtype, a.grantee
 ORDER BY 2 NULLS FIRST, 3, 4 NULLS FIRST`;

const OBJECTS: Record<string, string> = { r: 'TABLES', S: 'SEQUENCES', f: 'FUNCTIONS', T: 'TYPES', n: 'SCHEMAS', L: 'LARGE OBJECTS' };

function toItems(rows: readonly Row[], database: string | null): PersistenceItem[] {
  return rows.map((r) => {
    const schema = optStr(r, 'schema');
    const grantee = optStr(r, 'grantee');
    const objects = OBJECTS[str(r, 'objtype')] ?? 'TABLES';
    return {
      kind: 'default_acl',
      database,
      // the tail of the ALTER DEFAULT PRIVILEGES statement that made it
      name: `FOR ROLE ${ident(str(r, 'role'))}${schema === null ? '' : ` IN SCHEMA ${ident(schema)}`} GRANT ${strs(r, 'privileges').join(', ')} ON ${objects} TO ${grantee === null ? 'PUBLIC' : ident(grantee)}`,
      detail: `new ${objects.toLowerCase()} it creates${schema === null ? '' : ` in schema ${schema}`} are granted to ${grantee ?? 'PUBLIC'}${bool(r, 'grantable') ? ' WITH GRANT OPTION' : ''}`,
      active: false,
    };
  });
}

/** `FOR ROLE "r" ... GRANT x ON TABLES TO "g"` -> `ALTER DEFAULT PRIVILEGES FOR ROLE "r" ... REVOKE x ON TABLES FROM "g";` */
export function revokeDefault(name: string): string {
  const tail = mapOutsideQuotes(name, (plain) => plain.replace(/\bGRANT\b/, 'REVOKE').replace(/\bTO\b/, 'FROM'));
  return `ALTER DEFAULT PRIVILEGES ${tail};`;
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  return [
    {
      id: 'persistence.default_acl',
      severity: 'low',
      title: `${plural(items.length, 'default privilege')} set for the role`,
      detail: listing('Objects the role creates from now on are granted automatically:', items),
      remediation: remediationByDatabase(items, (i) => [revokeDefault(i.name)]),
      exposure: false,
    },
  ];
}

export const defaultAclCheck: PersistenceCheck = {
  kind: 'default_acl',
  id: 'persistence.default_acl',
  scope: 'database',
  sql: SQL,
  toItems,
  evaluate,
};
