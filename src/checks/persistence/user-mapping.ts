// persistence.user_mapping: user mappings for the role (stored remote credentials) and foreign
// servers it owns. Option values never leave the server: only option names and whether a
// password is among them.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { listing, optBool, plural, remediationByDatabase, str, strs } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

// pg_user_mappings (the view) shows every mapping but umoptions only to those entitled to them;
// NULL options are "unknown" unless the operator is a superuser (then they are really empty).
const SQL = `
SELECT 'mapping' AS what,
       m.srvname::text AS server,
       m.usename::text AS role,
       w.fdwname::text AS wrapper,
       ARRAY(SELECT pg_catalog.split_part(o, '=', 1) FROM pg_catalog.unnest(m.umoptions) o) AS option_names,
       CASE WHEN m.umoptions IS NOT NULL
            THEN EXISTS (SELECT 1 FROM pg_catalog.unnest(m.umoptions) o WHERE pg_catalog.split_part(o, '=', 1) = 'password')
            WHEN (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN false
       END AS has_password
  FROM pg_catalog.pg_user_mappings m
  JOIN pg_catalog.pg_foreign_server s ON s.oid = m.srvid
  JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
 WHERE m.umuser = $1
UNION ALL
SELECT 'server',
       s.srvname::text,
       pg_catalog.pg_get_userbyid(s.srvowner)::text,
       w.fdwname::text,
       ARRAY(SELECT pg_catalog.split_part(o, '=', 1) FROM pg_catalog.unnest(s.srvoptions) o),
       EXISTS (SELECT 1 FROM pg_catalog.unnest(s.srvoptions) o WHERE pg_catalog.split_part(o, '=', 1) = 'password')
  FROM pg_catalog.pg_foreign_server s
  JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
 WHERE s.srvowner = $1
 ORDER BY 1, 2`;

const MAPPING = 'USER MAPPING ';

function toItems(rows: readonly Row[], database: string | null): PersistenceItem[] {
  return rows.map((r) => {
    const options = strs(r, 'option_names');
    const password = optBool(r, 'has_password');
    const opts = options.length
      ? `options ${options.join(', ')} (values not shown)`
      : password === null
        ? 'options not visible to you'
        : 'no options';
    const pw =
      password === true
        ? 'stores a password: rotate it on the remote server'
        : password === null
          ? 'unknown whether it stores a password'
          : 'no stored password';
    if (str(r, 'what') === 'mapping')
      return {
        kind: 'user_mapping',
        database,
        // as in DROP USER MAPPING
        name: `${MAPPING}FOR ${ident(str(r, 'role'))} SERVER ${ident(str(r, 'server'))}`,
        detail: `${str(r, 'wrapper')} mapping; ${opts}; ${pw}`,
        active: false,
      };
    return {
      kind: 'user_mapping',
      database,
      // as in ALTER SERVER
      name: `SERVER ${ident(str(r, 'server'))}`,
      detail: `${str(r, 'wrapper')} foreign server owned by the role; ${opts}${password ? '; stores a password: rotate it on the remote server' : ''}`,
      active: false,
    };
  });
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  const mappings = items.filter((i) => i.name.startsWith(MAPPING));
  const servers = items.filter((i) => !i.name.startsWith(MAPPING));
  const parts = [
    mappings.length ? plural(mappings.length, 'user mapping') : '',
    servers.length ? plural(servers.length, 'foreign server') : '',
  ].filter(Boolean);
  return [
    {
      id: 'persistence.user_mapping',
      severity: 'medium',
      title: `${parts.join(' and ')} of the role hold remote access`,
      detail: listing(
        'User mappings store credentials for remote servers, usable by anything running as the role (its SECURITY DEFINER routines, its members); the owner of a server controls its mappings:',
        items,
      ),
      remediation: remediationByDatabase(
        items,
        (i) => (i.name.startsWith(MAPPING) ? [`DROP ${i.name};`] : [`ALTER ${i.name} OWNER TO CURRENT_USER;`]),
        ['rotate every stored remote password on the remote side, then drop the mappings and take over the servers'],
      ),
      exposure: false,
    },
  ];
}

export const userMappingCheck: PersistenceCheck = {
  kind: 'user_mapping',
  id: 'persistence.user_mapping',
  scope: 'database',
  sql: SQL,
  toItems,
  evaluate,
};
