// persistence.trigger_function: table triggers whose function the role owns. Triggers have no
// owner of their own: the body the role wrote runs on every matching row change, as whoever
// made the change (often an application or a superuser).
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { bool, listing, plural, qualified, remediationByDatabase, splitQuoted, str } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

// Partition clones (tgparentid <> 0) follow their parent trigger and are not listed again.
const SQL = `
SELECT t.tgname::text AS trigger,
       tn.nspname::text AS table_schema,
       c.relname::text AS table_name,
       fn.nspname::text AS function_schema,
       p.proname::text AS function_name,
       p.prosecdef AS security_definer,
       t.tgenabled::text AS enabled
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = c.relnamespace
  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
  JOIN pg_catalog.pg_namespace fn ON fn.oid = p.pronamespace
 WHERE p.proowner = $1 AND NOT t.tgisinternal AND t.tgparentid = 0
 ORDER BY 2, 3, 1`;

const MODES: Record<string, string> = { O: 'enabled', R: 'enabled in replica mode only', A: 'always enabled', D: 'disabled' };

function toItems(rows: readonly Row[], database: string | null): PersistenceItem[] {
  return rows.map((r) => {
    const enabled = str(r, 'enabled');
    return {
      kind: 'trigger_function',
      database,
      // `"trigger" ON "schema"."table"`, as in DROP TRIGGER
      name: `${ident(str(r, 'trigger'))} ON ${qualified(str(r, 'table_schema'), str(r, 'table_name'))}`,
      detail: `${MODES[enabled] ?? enabled}; runs ${qualified(str(r, 'function_schema'), str(r, 'function_name'))}(), owned by the role${bool(r, 'security_definer') ? ', as SECURITY DEFINER' : ''}`,
      active: enabled !== 'D',
    };
  });
}

/** `"trg" ON "s"."t"` -> ALTER TABLE "s"."t" DISABLE TRIGGER "trg". */
export function disableTrigger(name: string): string {
  const parts = splitQuoted(name);
  const trigger = parts[1] ?? '';
  const table = parts.slice(3).join('');
  return `ALTER TABLE ${table} DISABLE TRIGGER ${trigger};`;
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  const active = items.filter((i) => i.active);
  return [
    {
      id: 'persistence.trigger_function',
      severity: active.length ? 'high' : 'medium',
      title: `${plural(items.length, 'trigger')} run a function owned by the role${active.length < items.length ? ` (${active.length} enabled)` : ''}`,
      detail: listing("The role's code runs on every matching row change, as the user who made it:", items),
      remediation: remediationByDatabase(active, (i) => [disableTrigger(i.name)], [
        'disable them now; review each function body, then drop the trigger or take over the function',
        ...(active.length < items.length ? ['the disabled ones need no statement now: review and drop them'] : []),
      ]),
      exposure: false,
    },
  ];
}

export const triggerFunctionCheck: PersistenceCheck = {
  kind: 'trigger_function',
  id: 'persistence.trigger_function',
  scope: 'database',
  sql: SQL,
  toItems,
  evaluate,
};
