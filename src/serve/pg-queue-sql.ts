// The shared queue's SQL (pg-queue.ts runs it): fixed text over one table whose schema-qualified
// name is quoted by quote.ts's ident() (the only names spliced in); every value travels as a
// parameter. Times are the queue server's (now()), so replicas' clocks never decide a lease or a
// backoff.
import { ident } from '../pg/quote.js';

/** The table of a mode: a --dry-run service keeps its own, so a rehearsal never makes a real delivery a duplicate. */
export function queueTable(schema: string, dryRun: boolean): { schema: string; table: string; qualified: string } {
  const table = dryRun ? 'serve_queue_dry_run' : 'serve_queue';
  return { schema, table, qualified: `${ident(schema)}.${ident(table)}` };
}

/** Two replicas starting at once create the table once (CREATE ... IF NOT EXISTS can still collide on pg_type). */
export const CREATE_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('pgrevoke serve queue'))`;

/** What exists already: a queue user without CREATE can use a table made for it (IF NOT EXISTS checks CREATE first). */
export const EXISTS_SQL = `SELECT to_regnamespace($1) IS NOT NULL AS schema, to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS table`;

export const createSchemaSql = (schema: string): string => `CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`;

/**
 * The table. `seq` orders events as accepted; `key` is the redelivery key (unique: a second
 * INSERT of it does nothing); `roles` null is unmapped; a claim is `lease_owner` until
 * `lease_until`; `done_at` and `outcome` once done.
 */
export function createTableSql(t: { qualified: string; table: string }): string {
  return [
    `CREATE TABLE IF NOT EXISTS ${t.qualified} (`,
    '  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,',
    '  id text NOT NULL UNIQUE,',
    '  key text NOT NULL UNIQUE,',
    '  provider text NOT NULL,',
    '  action text NOT NULL,',
    '  identity jsonb NOT NULL,',
    '  summary text NOT NULL,',
    '  roles text[],',
    '  received_at timestamptz NOT NULL DEFAULT now(),',
    '  attempts integer NOT NULL DEFAULT 0,',
    '  last_error text,',
    '  not_before timestamptz NOT NULL DEFAULT now(),',
    '  lease_owner text,',
    '  lease_until timestamptz,',
    '  done_at timestamptz,',
    '  done_by text,',
    '  outcome jsonb',
    ');',
    // the claim scans what is owed, oldest first
    `CREATE INDEX IF NOT EXISTS ${ident(`${t.table}_owed`)} ON ${t.qualified} (seq) WHERE done_at IS NULL`,
  ].join('\n');
}

const COLUMNS = 'id, key, provider, action, identity, summary, roles, received_at, attempts, outcome';

/** $1 id, $2 key, $3 provider, $4 action, $5 identity (json), $6 summary, $7 roles (null: unmapped). A duplicate key: no row. */
export const insertSql = (q: string): string =>
  `INSERT INTO ${q} (id, key, provider, action, identity, summary, roles) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING ${COLUMNS}`;

/** $1 key: the first delivery's row (a new statement: it sees the row the conflict waited for). */
export const byKeySql = (q: string): string => `SELECT ${COLUMNS} FROM ${q} WHERE key = $1`;

/**
 * Claim the oldest event due that no live lease holds and no older event owed shares a role with
 * (owed: not done, whoever holds it). SKIP LOCKED: two replicas claiming at once take two events,
 * or one and nothing, never one twice; a row claimed and committed since this statement's snapshot
 * is re-checked on its new version and passed over. $1 owner, $2 lease (ms).
 */
export const claimSql = (q: string): string =>
  [
    `UPDATE ${q} SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::float8 / 1000)`,
    'WHERE seq = (',
    `  SELECT e.seq FROM ${q} e`,
    '  WHERE e.done_at IS NULL AND e.not_before <= now() AND (e.lease_until IS NULL OR e.lease_until < now())',
    `    AND NOT EXISTS (SELECT FROM ${q} o WHERE o.done_at IS NULL AND o.seq < e.seq AND o.roles && e.roles)`,
    '  ORDER BY e.seq LIMIT 1 FOR UPDATE SKIP LOCKED)',
    `RETURNING ${COLUMNS}`,
  ].join('\n');

/** $1 id, $2 owner, $3 lease (ms): the claim kept while the cutoff runs; no row: it was lost (the lease ran out and another took it). */
export const renewSql = (q: string): string =>
  `UPDATE ${q} SET lease_until = now() + make_interval(secs => $3::float8 / 1000) WHERE id = $1 AND lease_owner = $2 AND done_at IS NULL RETURNING 1`;

/** $1 id, $2 owner, $3 error, $4 retry in (ms): counted and let go; the attempts as counted now. */
export const attemptSql = (q: string): string =>
  [
    `UPDATE ${q} SET attempts = attempts + 1, last_error = $3, not_before = now() + make_interval(secs => $4::float8 / 1000),`,
    '  lease_owner = NULL, lease_until = NULL',
    'WHERE id = $1 AND done_at IS NULL AND (lease_owner = $2 OR lease_owner IS NULL) RETURNING attempts',
  ].join('\n');

/** $1 id, $2 owner, $3 outcome (json), $4 attempts: the first outcome recorded stands. */
export const finishSql = (q: string): string =>
  [
    `UPDATE ${q} SET done_at = now(), done_by = $2, outcome = $3, attempts = GREATEST(attempts, $4),`,
    '  lease_owner = NULL, lease_until = NULL',
    'WHERE id = $1 AND done_at IS NULL RETURNING 1',
  ].join('\n');

/** What is owed (GET /status's queue depth: every replica's). */
export const depthSql = (q: string): string => `SELECT count(*)::int AS n FROM ${q} WHERE done_at IS NULL`;

/** $1 owner: the claims of a service that stops, let go so another replica takes them at once. */
export const releaseSql = (q: string): string =>
  `UPDATE ${q} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND done_at IS NULL`;

/** $1 keep (ms): done events older than that are forgotten (their keys no longer catch a redelivery). */
export const compactSql = (q: string): string => `DELETE FROM ${q} WHERE done_at < now() - make_interval(secs => $1::float8 / 1000)`;
