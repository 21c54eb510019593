// persistence.owned_objects: what pg_shdepend records against the role, counted per database
// and catalog. pg_shdepend is cluster-wide, so one query sees every database (names of the
// objects resolve only inside each one). dbid 0 = shared objects (databases, tablespaces,
// subscriptions...). These are what make DROP ROLE fail with 2BP01.
import { ident } from '../../pg/quote.js';
import type { Finding, PersistenceItem } from '../types.js';
import { listing, optStr, plural, remediationByDatabase, splitQuoted, str } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

const SQL = `
SELECT sd.dbid::int8 AS dbid,
       d.datname::text AS database,
       sd.classid::pg_catalog.regclass::text AS catalog,
       sd.deptype::text AS deptype,
       pg_catalog.count(*)::int AS n,
       (SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.oid = $1) AS role
  FROM pg_catalog.pg_shdepend sd
  LEFT JOIN pg_catalog.pg_database d ON d.oid = sd.dbid
 WHERE sd.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND sd.refobjid = $1 AND sd.deptype <> 'p'
 GROUP BY 1, 2, 3, 4
 ORDER BY 1, sd.deptype::text <> 'o', 4, 3`;

const DEPTYPES: Record<string, string> = {
  o: 'owns',
  a: 'has privileges on',
  i: 'has initial privileges on',
  r: 'is named in policies on',
};

function toItems(rows: readonly Row[]): PersistenceItem[] {
  const byDb = new Map<string, { database: string | null; role: string; parts: Map<string, string[]>; total: number }>();
  for (const r of rows) {
    const dbid = str(r, 'dbid');
    const entry = byDb.get(dbid) ?? {
      database: dbid === '0' ? null : (optStr(r, 'database') ?? `(database oid ${dbid})`),
      role: str(r, 'role'),
      parts: new Map<string, string[]>(),
      total: 0,
    };
    const catalog = str(r, 'catalog');
    // PG16+ records the grantor of a role membership as an 'a' dependency on pg_auth_members
    const verb = catalog === 'pg_auth_members' ? 'granted' : (DEPTYPES[str(r, 'deptype')] ?? `depends (${str(r, 'deptype')}) on`);
    const n = Number(r.n);
    entry.parts.set(verb, [...(entry.parts.get(verb) ?? []), `${catalog}: ${n}`]);
    entry.total += n;
    byDb.set(dbid, entry);
  }
  return [...byDb.values()].map((e) => ({
    kind: 'owned_objects',
    database: e.database,
    // `"role" owns pg_class: 3, pg_proc: 2; has privileges on pg_namespace: 1`
    name: `${ident(e.role)} ${[...e.parts].map(([verb, counts]) => `${verb} ${counts.join(', ')}`).join('; ')}`,
    detail:
      e.database === null
        ? `${plural(e.total, 'shared object')} (databases, tablespaces, subscriptions...): REASSIGN OWNED in any database covers them`
        : `${plural(e.total, 'dependent object')} in this database: REASSIGN OWNED / DROP OWNED must run here`,
    active: false,
  }));
}

function evaluate(items: PersistenceItem[]): Finding[] {
  if (!items.length) return [];
  const role = splitQuoted(items[0]!.name)[1] ?? '';
  const local = items.filter((i) => i.database !== null);
  const total = items.length;
  return [
    {
      id: 'persistence.owned_objects',
      severity: 'low',
      title: `the role owns or holds privileges on objects in ${plural(total, 'place')}`,
      detail: listing('Counts from pg_shdepend; DROP ROLE fails (2BP01) until each database is cleaned:', items),
      remediation: remediationByDatabase(
        local.length ? local : items,
        () => [`REASSIGN OWNED BY ${role} TO CURRENT_USER;`, `DROP OWNED BY ${role};`],
        [
          'only after the findings above are neutralised: SECURITY DEFINER code reassigned to you runs with your privileges',
          'REASSIGN OWNED also moves shared objects (databases, tablespaces); DROP OWNED also revokes its privileges',
        ],
      ),
      exposure: false,
    },
  ];
}

export const ownedObjectsCheck: PersistenceCheck = {
  kind: 'owned_objects',
  id: 'persistence.owned_objects',
  scope: 'cluster',
  sql: SQL,
  toItems,
  evaluate,
};
