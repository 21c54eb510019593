// persistence.granted_roles: pg_auth_members rows where the role is the granted role, the member
// or the grantor. Members of the role act as it with their own logins; grants the role made may
// be backdoors (and on PG16+ keep DROP ROLE from succeeding); roles it holds serve its code.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { bool, listing, mapOutsideQuotes, optBool, optStr, plural, remediationByDatabase, str } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

// inherit_option / set_option exist from PG16; read through to_jsonb so one text serves 14..18.
const SQL = `
SELECT r.rolname::text AS role,
       mr.rolname::text AS member,
       g.rolname::text AS grantor,
       m.roleid = $1 AS of_role,
       m.member = $1 AS by_member,
       m.grantor = $1 AS by_grantor,
       m.admin_option,
       (pg_catalog.to_jsonb(m) ->> 'inherit_option')::boolean AS inherit_option,
       (pg_catalog.to_jsonb(m) ->> 'set_option')::boolean AS set_option
  FROM pg_catalog.pg_auth_members m
  JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
  JOIN pg_catalog.pg_roles mr ON mr.oid = m.member
  LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.grantor
 WHERE m.roleid = $1 OR m.member = $1 OR m.grantor = $1
 ORDER BY 1, 2, 3`;

/** How an item relates to the role; every detail starts with one of these. */
export const RELATION = {
  actsAs: 'acts as the role: ',
  granted: 'granted by the role: ',
  holds: 'held by the role: ',
} as const;

function options(r: Row): string {
  const inherit = optBool(r, 'inherit_option');
  const set = optBool(r, 'set_option');
  const parts = [bool(r, 'admin_option') ? 'WITH ADMIN OPTION' : ''];
  if (inherit !== null) parts.push(`INHERIT ${inherit ? 'TRUE' : 'FALSE'}`);
  if (set !== null) parts.push(`SET ${set ? 'TRUE' : 'FALSE'}`);
  return parts.filter(Boolean).join(', ');
}

function toItems(rows: readonly Row[]): PersistenceItem[] {
  return rows.map((r) => {
    const role = str(r, 'role');
    const member = str(r, 'member');
    const grantor = optStr(r, 'grantor');
    const opts = options(r);
    const by = grantor === null ? '' : `, granted by ${grantor}`;
    let detail: string;
    if (bool(r, 'by_grantor') && !bool(r, 'by_member') && !bool(r, 'of_role'))
      detail = `${RELATION.granted}${member} is a member of ${role}${opts ? ` (${opts})` : ''}; a grant made by a compromised role may be a backdoor, and on PG16+ DROP ROLE fails until it is revoked or re-granted by another role`;
    else if (bool(r, 'of_role'))
      detail = `${RELATION.actsAs}${member} is a member of it${opts ? ` (${opts})` : ''}${by}; it can use the role's privileges with its own login, NOLOGIN or not`;
    else
      detail = `${RELATION.holds}member of ${role}${opts ? ` (${opts})` : ''}${by}; everything that runs as the role (SECURITY DEFINER code, subscriptions, jobs) has it`;
    return {
      kind: 'granted_roles',
      database: null,
      // the tail of the GRANT that made it
      name: `${ident(role)} TO ${ident(member)}${grantor === null ? '' : ` GRANTED BY ${ident(grantor)}`}`,
      detail,
      active: false,
    };
  });
}

/** `"r" TO "m" GRANTED BY "g"` -> `REVOKE "r" FROM "m" GRANTED BY "g";` */
export function revokeMembership(name: string): string {
  return `REVOKE ${mapOutsideQuotes(name, (plain) => plain.replace(/\bTO\b/, 'FROM'))};`;
}

// Grants the role made first: on PG16+ they depend on its own ADMIN OPTION, whose revocation
// fails ("dependent privileges exist") while they are there.
const REVOKE_ORDER = [RELATION.granted, RELATION.actsAs, RELATION.holds];
const rank = (i: PersistenceItem) => REVOKE_ORDER.findIndex((p) => i.detail.startsWith(p));

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  items = [...items].sort((a, b) => rank(a) - rank(b));
  const outward = items.filter((i) => !i.detail.startsWith(RELATION.holds));
  return [
    {
      id: 'persistence.granted_roles',
      severity: outward.length ? 'high' : 'medium',
      title: `${plural(items.length, 'role membership')} involve the role`,
      detail: listing('Memberships survive NOLOGIN: members keep acting as the role, and grants the role made stay in force:', items),
      remediation: remediationByDatabase(items, (i) => [revokeMembership(i.name)], [
        'review each; a legitimate grant made by the role must be re-granted by another role before it is revoked',
      ]),
      exposure: false,
    },
  ];
}

export const grantedRolesCheck: PersistenceCheck = {
  kind: 'granted_roles',
  id: 'persistence.granted_roles',
  scope: 'cluster',
  sql: SQL,
  toItems,
  evaluate,
};
