// Persistence that outlives NOLOGIN: every vector in its own file; here they are collected
// (cluster-wide ones once on the main connection, per-database ones over one connection per
// database, a bounded number at a time) and evaluated.
import { connect } from '../../pg/connect.js';
import type { ConnParams } from '../../pg/conninfo.js';
import { redact } from '../../pg/redact.js';
import { mapBounded } from '../../util/pool.js';
import type { Check, Finding, PersistenceFacts, PersistenceItem, Queryable, RoleFacts } from '../types.js';
import { bool, optStr, str } from './common.js';
import { CRON_DATABASE_SQL, CRON_PRESENT_SQL, cronJobCheck } from './cron-job.js';
import { defaultAclCheck } from './default-acl.js';
import { eventTriggerCheck } from './event-trigger.js';
import { grantedRolesCheck } from './granted-roles.js';
import { ownedObjectsCheck } from './owned-objects.js';
import { replicationSlotCheck } from './replication-slot.js';
import { securityDefinerCheck } from './security-definer.js';
import { subscriptionCheck } from './subscription.js';
import { triggerFunctionCheck } from './trigger-function.js';
import type { PersistenceCheck, Row } from './types.js';
import { userMappingCheck } from './user-mapping.js';

export type { PersistenceCheck } from './types.js';

/** Every vector, in report order. */
export const PERSISTENCE_CHECKS: PersistenceCheck[] = [
  subscriptionCheck,
  replicationSlotCheck,
  cronJobCheck,
  securityDefinerCheck,
  eventTriggerCheck,
  triggerFunctionCheck,
  userMappingCheck,
  grantedRolesCheck,
  defaultAclCheck,
  ownedObjectsCheck,
];

export const SCAN_INCOMPLETE_ID = 'persistence.scan_incomplete';

/**
 * Databases to scan: those where pg_shdepend records something of the role (every per-database
 * vector leaves an owner or privilege entry there), plus, with allDatabases, every connectable
 * non-template database. Databases that refuse connections are still listed: trying them puts
 * the server's own reason into `errors`.
 */
export const DATABASES_SQL = `
SELECT d.datname::text AS datname
  FROM pg_catalog.pg_database d
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend sd
                WHERE sd.dbid = d.oid AND sd.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND sd.refobjid = $1)
    OR ($2::boolean AND d.datallowconn AND NOT d.datistemplate)
 ORDER BY 1`;

type ScanError = PersistenceFacts['errors'][number];

function scanError(database: string, err: unknown, checkId?: string): ScanError {
  const e = (err ?? {}) as { sqlstate?: unknown; code?: unknown; message?: unknown };
  const code = typeof e.sqlstate === 'string' ? e.sqlstate : typeof e.code === 'string' ? e.code : undefined;
  const message = redact(typeof e.message === 'string' ? e.message : String(err));
  const out: ScanError = { database, message: checkId ? `${checkId}: ${message}` : message };
  if (code && /^[0-9A-Z]{5}$/.test(code)) out.sqlstate = code;
  return out;
}

interface Scan {
  items: PersistenceItem[];
  errors: ScanError[];
  scanned: boolean;
}

async function runChecks(
  q: Queryable,
  checks: PersistenceCheck[],
  roleOid: number,
  database: string,
  itemsDb: string | null,
  scan: Scan,
): Promise<void> {
  for (const check of checks) {
    try {
      const { rows } = await q.query<Row>(check.sql, [roleOid]);
      scan.items.push(...check.toItems(rows, itemsDb));
    } catch (err) {
      scan.errors.push(scanError(database, err, check.id));
    }
  }
}

/** One connection to `database`, each check's query once, closed again. Never throws. */
async function scanDatabase(params: ConnParams, database: string, checks: PersistenceCheck[], roleOid: number): Promise<Scan> {
  const scan: Scan = { items: [], errors: [], scanned: false };
  let client: Awaited<ReturnType<typeof connect>>;
  try {
    client = await connect(params, database);
  } catch (err) {
    scan.errors.push(scanError(database, err));
    return scan;
  }
  try {
    scan.scanned = true;
    await runChecks(client, checks, roleOid, database, database, scan);
  } finally {
    await client.end().catch(() => undefined);
  }
  return scan;
}

/** pg_cron: only where cron.database_name points, only if the extension is there. */
async function scanCron(params: ConnParams, main: Queryable, roleOid: number): Promise<Scan> {
  const scan: Scan = { items: [], errors: [], scanned: false };
  let database: string | null;
  try {
    database = optStr((await main.query<Row>(CRON_DATABASE_SQL)).rows[0] ?? {}, 'database');
  } catch (err) {
    scan.errors.push(scanError(params.database, err, cronJobCheck.id));
    return scan;
  }
  if (!database) return scan;
  let client: Awaited<ReturnType<typeof connect>>;
  try {
    client = await connect(params, database);
  } catch (err) {
    scan.errors.push(scanError(database, err, cronJobCheck.id));
    return scan;
  }
  try {
    const probe = (await client.query<Row>(CRON_PRESENT_SQL)).rows[0] ?? {};
    if (!bool(probe, 'present')) return scan;
    if (bool(probe, 'filtered'))
      scan.errors.push({
        database,
        message: `${cronJobCheck.id}: row-level security on cron.job shows you only your own jobs; connect as a superuser to see the role's`,
      });
    await runChecks(client, [cronJobCheck], roleOid, database, database, scan);
  } catch (err) {
    scan.errors.push(scanError(database, err, cronJobCheck.id));
  } finally {
    await client.end().catch(() => undefined);
  }
  return scan;
}

function itemOrder(a: PersistenceItem, b: PersistenceItem): number {
  const k = PERSISTENCE_CHECKS.findIndex((c) => c.kind === a.kind) - PERSISTENCE_CHECKS.findIndex((c) => c.kind === b.kind);
  if (k) return k;
  const da = a.database ?? '';
  const db = b.database ?? '';
  if (da !== db) return a.database === null ? -1 : b.database === null ? 1 : da < db ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Read-only: find everything of the role that survives NOLOGIN. Cluster-wide catalogs are read
 * on `main`; each database that needs it gets one connection of its own (at most
 * `opts.concurrency` at once). A database that cannot be read lands in `errors`; this never
 * throws because of one database.
 */
export async function collectPersistence(
  params: ConnParams,
  main: Queryable,
  ctx: { roleOid: number; roleName: string },
  opts: { allDatabases: boolean; concurrency: number },
): Promise<PersistenceFacts> {
  const cluster: Scan = { items: [], errors: [], scanned: true };
  const clusterChecks = PERSISTENCE_CHECKS.filter((c) => c.scope === 'cluster' && c !== cronJobCheck);
  const dbChecks = PERSISTENCE_CHECKS.filter((c) => c.scope === 'database');
  await runChecks(main, clusterChecks, ctx.roleOid, params.database, null, cluster);

  let databases: string[] = [];
  try {
    databases = (await main.query<Row>(DATABASES_SQL, [ctx.roleOid, opts.allDatabases])).rows.map((r) => str(r, 'datname'));
  } catch (err) {
    cluster.errors.push(scanError(params.database, err, `persistence (databases holding objects of ${ctx.roleName})`));
  }
  const perDb = await mapBounded(databases, opts.concurrency, (db) => scanDatabase(params, db, dbChecks, ctx.roleOid));
  const cron = await scanCron(params, main, ctx.roleOid);

  const scans = [cluster, cron, ...perDb];
  return {
    databasesScanned: databases.filter((_, i) => perDb[i]!.scanned),
    items: scans.flatMap((s) => s.items).sort(itemOrder),
    errors: scans.flatMap((s) => s.errors).sort((a, b) => (a.database < b.database ? -1 : a.database > b.database ? 1 : 0)),
  };
}

export const persistenceCheck: Check = {
  ids: [...PERSISTENCE_CHECKS.map((c) => c.id), SCAN_INCOMPLETE_ID],
  evaluate(facts: RoleFacts): Finding[] {
    const p = facts.persistence;
    const out = PERSISTENCE_CHECKS.flatMap((c) => c.evaluate(p.items.filter((i) => i.kind === c.kind)));
    if (p.errors.length) {
      const dbs = [...new Set(p.errors.map((e) => e.database))];
      out.push({
        id: SCAN_INCOMPLETE_ID,
        severity: 'medium',
        title: `persistence scan incomplete in ${dbs.length === 1 ? 'one database' : `${dbs.length} databases`}`,
        detail: [
          'These could not be read, so persistence there is unknown:',
          ...p.errors.map((e) => `- ${e.database}: ${e.message}${e.sqlstate ? ` [${e.sqlstate}]` : ''}`),
        ].join('\n'),
        remediation:
          'Run inspect again as a superuser that can connect to every database (check pg_hba.conf, CONNECT privileges and datallowconn), or inspect those databases by hand.',
        exposure: false,
      });
    }
    return out;
  },
};
