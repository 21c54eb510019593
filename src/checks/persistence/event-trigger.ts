// persistence.event_trigger: event triggers the role owns, or whose function it owns. They fire
// for every matching DDL command (and, PG17+, every login) of every user, superusers included.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { bool, listing, plural, qualified, remediationByDatabase, str } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

const SQL = `
SELECT e.evtname::text AS name,
       e.evtevent::text AS event,
       e.evtenabled::text AS enabled,
       pg_catalog.pg_get_userbyid(e.evtowner)::text AS owner,
       e.evtowner = $1 AS owned,
       n.nspname::text AS function_schema,
       p.proname::text AS function_name,
       p.proowner = $1 AS function_owned
  FROM pg_catalog.pg_event_trigger e
  JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE e.evtowner = $1 OR p.proowner = $1
 ORDER BY 1`;

const MODES: Record<string, string> = { O: 'enabled', R: 'enabled in replica mode only', A: 'always enabled', D: 'disabled' };

function toItems(rows: readonly Row[], database: string | null): PersistenceItem[] {
  return rows.map((r) => {
    const enabled = str(r, 'enabled');
    const why = [
      bool(r, 'owned') ? 'owned by the role' : `owned by ${str(r, 'owner')}`,
      bool(r, 'function_owned') ? 'its function is owned by the role' : '',
    ]
      .filter(Boolean)
      .join(', ');
    return {
      kind: 'event_trigger',
      database,
      name: ident(str(r, 'name')),
      detail: `${MODES[enabled] ?? enabled} on ${str(r, 'event')}, runs ${qualified(str(r, 'function_schema'), str(r, 'function_name'))}(); ${why}`,
      active: enabled !== 'D',
    };
  });
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  const active = items.filter((i) => i.active);
  return [
    {
      id: 'persistence.event_trigger',
      severity: active.length ? 'high' : 'medium',
      title: `${plural(items.length, 'event trigger')} planted by the role${active.length < items.length ? ` (${active.length} enabled)` : ''}`,
      detail: listing("These run the role's code on DDL (PG17+: on login) of every user, superusers included:", items),
      remediation: remediationByDatabase(active, (i) => [`ALTER EVENT TRIGGER ${i.name} DISABLE;`], [
        'disable them now; review the functions, then DROP EVENT TRIGGER',
        ...(active.length < items.length ? ['the disabled ones need no statement now: review and drop them'] : []),
      ]),
      exposure: false,
    },
  ];
}

export const eventTriggerCheck: PersistenceCheck = {
  kind: 'event_trigger',
  id: 'persistence.event_trigger',
  scope: 'database',
  sql: SQL,
  toItems,
  evaluate,
};
