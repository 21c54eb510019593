// persistence.replication_slot: slots streamed by a walsender of the role. Slots have no owner:
// only an active slot can be attributed, through its active_pid. The walsender keeps streaming
// after NOLOGIN until terminated, and the slot holds back WAL.
import { literal } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { listing, optStr, plural, remediationByDatabase, str, bool } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

const SQL = `
SELECT s.slot_name::text AS name,
       s.slot_type AS type,
       s.plugin::text AS plugin,
       s.database::text AS database,
       s.temporary,
       s.active_pid AS pid,
       a.client_addr::text AS client_addr,
       a.application_name
  FROM pg_catalog.pg_replication_slots s
  JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid
 WHERE a.usesysid = $1
 ORDER BY 1`;

const TEMPORARY = 'temporary ';

function toItems(rows: readonly Row[]): PersistenceItem[] {
  return rows.map((r) => {
    const plugin = optStr(r, 'plugin');
    const client = optStr(r, 'client_addr');
    const app = str(r, 'application_name');
    return {
      kind: 'replication_slot',
      database: optStr(r, 'database'),
      // slot names are limited to [a-z0-9_]: shown as they are
      name: str(r, 'name'),
      detail:
        `${bool(r, 'temporary') ? TEMPORARY : ''}${str(r, 'type')} slot${plugin ? ` (${plugin})` : ''} streamed by walsender pid ${str(r, 'pid')}` +
        `${client ? ` from ${client}` : ''}${app ? ` (${app})` : ''}; keeps streaming after NOLOGIN and holds back WAL`,
      active: true,
    };
  });
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  return [
    {
      id: 'persistence.replication_slot',
      severity: 'critical',
      title: `${plural(items.length, 'replication slot')} streamed by the role`,
      detail: listing('A walsender of the role is streaming from these slots right now:', items),
      remediation: remediationByDatabase(
        items,
        (i) => [
          `SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = ${literal(i.name)} AND active_pid IS NOT NULL;`,
          // a temporary slot goes away with its session
          ...(i.detail.startsWith(TEMPORARY) ? [] : [`SELECT pg_drop_replication_slot(${literal(i.name)});`]),
        ],
        ['after NOLOGIN: end the walsender, then drop the slot unless a legitimate consumer needs it'],
      ),
      // always true today: only a slot in use can be attributed to the role
      exposure: items.some((i) => i.active),
    },
  ];
}

export const replicationSlotCheck: PersistenceCheck = {
  kind: 'replication_slot',
  id: 'persistence.replication_slot',
  scope: 'cluster',
  sql: SQL,
  toItems,
  evaluate,
};
