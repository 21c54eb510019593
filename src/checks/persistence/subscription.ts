// persistence.subscription: logical replication subscriptions the role owns. The apply worker
// runs as the owner and keeps writing replicated changes after NOLOGIN, until DISABLE.
// subconninfo may hold a cleartext password: it never leaves the server, only a yes/no does.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { listing, optBool, plural, remediationByDatabase, str, strs } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

/** A password in keyword=value form, as a URI query parameter, or as URI user:password@. */
export const CONNINFO_PASSWORD_RE = `(^|[[:space:]])password[[:space:]]*=|[?&]password=|://[^/@[:space:]]*:[^/@[:space:]]*@`;

// subconninfo is readable only by superusers (its column privilege is revoked from PUBLIC); any
// reference to it fails for everyone else, even inside a CASE branch never taken. So it is
// tested through query_to_xml(), which plans the inner query only when the privilege is there:
// other operators still get the list, with has_password NULL (unknown).
const SQL = `
SELECT s.subname::text AS name,
       d.datname::text AS database,
       s.subenabled AS enabled,
       s.subslotname::text AS slot,
       s.subpublications::text[] AS publications,
       CASE WHEN pg_catalog.has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT')
            THEN pg_catalog.strpos(pg_catalog.query_to_xml(pg_catalog.format(
                   'SELECT s.subconninfo ~* %L AS p FROM pg_catalog.pg_subscription s WHERE s.oid = %s',
                   '${CONNINFO_PASSWORD_RE}', s.oid), false, true, '')::text, '<p>true</p>') > 0
       END AS has_password
  FROM pg_catalog.pg_subscription s
  JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
 WHERE s.subowner = $1
 ORDER BY 2, 1`;

const PASSWORD_NOTE: Record<string, string> = {
  true: 'its connection string stores a password (not shown): rotate it on the publisher',
  false: 'no password in its connection string',
  null: 'unknown whether its connection string stores a password (reading subconninfo needs superuser)',
};

function toItems(rows: readonly Row[]): PersistenceItem[] {
  return rows.map((r) => {
    const enabled = optBool(r, 'enabled') === true;
    const pubs = strs(r, 'publications');
    const slot = str(r, 'slot');
    return {
      kind: 'subscription',
      database: str(r, 'database'),
      name: ident(str(r, 'name')),
      detail: [
        enabled ? 'enabled: its apply worker keeps replicating as the role after NOLOGIN' : 'disabled',
        `publications ${pubs.length ? pubs.join(', ') : '(none)'}`,
        slot ? `remote slot ${slot}` : 'no remote slot',
        PASSWORD_NOTE[String(optBool(r, 'has_password'))]!,
      ].join('; '),
      active: enabled,
    };
  });
}

function evaluate(items: PersistenceItem[]): Finding[] {
  const out: Finding[] = [];
  const enabled = items.filter((i) => i.active);
  const disabled = items.filter((i) => !i.active);
  if (enabled.length)
    out.push({
      id: 'persistence.subscription',
      severity: 'critical',
      title: `${plural(enabled.length, 'enabled subscription')} keep replicating as the role`,
      detail: listing('The apply worker runs as the owner and is not stopped by NOLOGIN or by terminating sessions:', enabled),
      remediation: remediationByDatabase(enabled, (i) => [`ALTER SUBSCRIPTION ${i.name} DISABLE;`], [
        'stop the apply workers now; rotate any password stored in the connection string on the publisher',
      ]),
      exposure: true,
    });
  if (disabled.length)
    out.push({
      id: 'persistence.subscription',
      severity: 'medium',
      title: `${plural(disabled.length, 'disabled subscription')} owned by the role`,
      detail: listing(
        'Anyone acting as the role (or a superuser) can enable these again; their connection strings may hold credentials:',
        disabled,
      ),
      remediation: remediationByDatabase(
        disabled,
        (i) => [`ALTER SUBSCRIPTION ${i.name} SET (slot_name = NONE);`, `DROP SUBSCRIPTION ${i.name};`],
        ['review first; dropping with slot_name = NONE leaves the slot on the publisher: drop it there'],
      ),
      exposure: false,
    });
  return out;
}

export const subscriptionCheck: PersistenceCheck = {
  kind: 'subscription',
  id: 'persistence.subscription',
  scope: 'cluster',
  sql: SQL,
  toItems,
  evaluate,
};
