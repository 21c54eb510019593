// persistence.cron_job: pg_cron jobs scheduled as the role. pg_cron keeps its jobs in one
// database (cron.database_name); NOLOGIN makes them fail at connect, but they stay scheduled
// and run again the moment the role can log in. Commands are shown redacted and shortened.
import { redact } from '../../pg/redact.js';
import type { Finding, PersistenceItem } from '../types.js';
import { listing, optBool, optStr, plural, remediationByDatabase, str } from './common.js';
import type { PersistenceCheck, Row } from './types.js';

/** On the main connection: where pg_cron keeps its jobs (NULL when pg_cron is not loaded). */
export const CRON_DATABASE_SQL = `SELECT pg_catalog.current_setting('cron.database_name', true) AS database`;

/** In that database: is the extension there, and would row-level security hide other users' jobs? */
export const CRON_PRESENT_SQL = `
SELECT pg_catalog.to_regclass('cron.job') IS NOT NULL AS present,
       CASE WHEN pg_catalog.to_regclass('cron.job') IS NOT NULL THEN pg_catalog.row_security_active('cron.job') END AS filtered`;

// Columns that appeared in later pg_cron versions are read through to_jsonb.
const SQL = `
SELECT j.jobid::int8::text AS jobid,
       pg_catalog.to_jsonb(j) ->> 'jobname' AS jobname,
       j.schedule::text AS schedule,
       j.command::text AS command,
       pg_catalog.to_jsonb(j) ->> 'database' AS target_database,
       coalesce((pg_catalog.to_jsonb(j) ->> 'active')::boolean, true) AS active
  FROM cron.job j
 WHERE j.username = (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = $1)
 ORDER BY j.jobid`;

function shorten(text: string, max = 160): string {
  const flat = redact(text).replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

function toItems(rows: readonly Row[], database: string | null): PersistenceItem[] {
  return rows.map((r) => {
    const name = optStr(r, 'jobname');
    const target = optStr(r, 'target_database');
    const active = optBool(r, 'active') !== false;
    return {
      kind: 'cron_job',
      database,
      name: `job ${str(r, 'jobid')}${name ? ` (${name})` : ''}`,
      detail: `${active ? 'active' : 'inactive'}, schedule '${str(r, 'schedule')}'${target ? ` in database ${target}` : ''}: ${shorten(str(r, 'command'))}`,
      active,
    };
  });
}

function unschedule(item: PersistenceItem): string[] {
  const id = /^job (\d+)/.exec(item.name)?.[1];
  return id ? [`SELECT cron.unschedule(${id});`] : [];
}

function evaluate(items: PersistenceItem[]): Finding[] {
  const out: Finding[] = [];
  const active = items.filter((i) => i.active);
  const inactive = items.filter((i) => !i.active);
  if (active.length)
    out.push({
      id: 'persistence.cron_job',
      severity: 'high',
      title: `${plural(active.length, 'pg_cron job')} scheduled as the role`,
      detail: listing('pg_cron runs these as the role on schedule; NOLOGIN only makes them fail until the role can log in again:', active),
      remediation: remediationByDatabase(active, unschedule, ['review the commands, then unschedule']),
      exposure: true,
    });
  if (inactive.length)
    out.push({
      id: 'persistence.cron_job',
      severity: 'low',
      title: `${plural(inactive.length, 'inactive pg_cron job')} of the role`,
      detail: listing('Not running now, but anyone who can update cron.job can activate them:', inactive),
      remediation: remediationByDatabase(inactive, unschedule),
      exposure: false,
    });
  return out;
}

export const cronJobCheck: PersistenceCheck = {
  kind: 'cron_job',
  id: 'persistence.cron_job',
  scope: 'cluster',
  sql: SQL,
  toItems,
  evaluate,
};
