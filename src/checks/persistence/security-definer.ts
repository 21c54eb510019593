// persistence.security_definer: SECURITY DEFINER routines the role owns. Anyone allowed to
// EXECUTE them runs their body with the role's privileges, whether the role can log in or not.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { listing, plural, remediationByDatabase, str, strs } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

// Names are built from their parts (not oid::regprocedure, which drops the schema of anything
// on the search_path) so that they are always schema-qualified and quoted.
const SQL = `
SELECT n.nspname::text AS schema,
       p.proname::text AS name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
       p.prokind::text AS prokind,
       l.lanname::text AS language,
       ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END
               FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
              WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
              ORDER BY 1) AS executors
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE p.proowner = $1 AND p.prosecdef
 ORDER BY 1, 2, 3`;

function toItems(rows: readonly Row[], database: string | null): PersistenceItem[] {
  return rows.map((r) => {
    const executors = strs(r, 'executors');
    const what = str(r, 'prokind') === 'p' ? 'procedure' : 'function';
    return {
      kind: 'security_definer',
      database,
      name: `${ident(str(r, 'schema'))}.${ident(str(r, 'name'))}(${str(r, 'args')})`,
      detail: `SECURITY DEFINER ${what} in ${str(r, 'language')}, executable by ${executors.length ? executors.join(', ') : 'no one but the owner and superusers'}`,
      active: true,
    };
  });
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  return [
    {
      id: 'persistence.security_definer',
      severity: 'high',
      title: `${plural(items.length, 'SECURITY DEFINER routine')} run with the role's privileges`,
      detail: listing(
        'Whoever may EXECUTE these runs their body as the role, with all its privileges, after NOLOGIN and after every session is gone:',
        items,
      ),
      remediation: remediationByDatabase(items, (i) => [`ALTER ROUTINE ${i.name} SECURITY INVOKER;`], [
        'make them run as the caller; review each body, then DROP ROUTINE what the role planted',
      ]),
      exposure: false,
    },
  ];
}

export const securityDefinerCheck: PersistenceCheck = {
  kind: 'security_definer',
  id: 'persistence.security_definer',
  scope: 'database',
  sql: SQL,
  toItems,
  evaluate,
};
