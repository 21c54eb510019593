// Is a reload of pg_hba.conf pending: was any of its files changed after pg_conf_load_time()?
// pg_stat_file has whole-second resolution, so an edit in the same second as the reload cannot be
// told apart from one just before it: that is "cannot tell" (null), never "not pending".
import type { RawHba } from './hba-source.js';
import type { Queryable } from './types.js';

/** The main file's modification (whole seconds) and the load time, both as seconds since the epoch. */
export const HBA_MAIN_MTIME_SQL = `SELECT extract(epoch FROM (pg_catalog.pg_stat_file(pg_catalog.current_setting('hba_file'))).modification)::float8 AS m,
       extract(epoch FROM pg_catalog.pg_conf_load_time())::float8 AS t`;

/** pg_conf_load_time() as seconds since the epoch, to compare with the files' modification times. */
export const CONF_LOAD_TIME_SQL = `SELECT extract(epoch FROM pg_catalog.pg_conf_load_time())::float8 AS t`;

/**
 * How far before the true write time a sub-second mtime may lie: kernels stamp files from a coarse
 * clock, up to a tick (1-10 ms) behind the clock pg_conf_load_time() reads (3 ms seen here).
 */
export const MTIME_LAG_S = 0.05;

/** Pure: changed after the load (true), before it (false), or null when the mtime's resolution cannot tell. */
export function changedAfterLoad(mtime: number, loadTime: number, precise: boolean): boolean | null {
  if (mtime > loadTime) return true;
  if (mtime >= (precise ? loadTime - MTIME_LAG_S : Math.floor(loadTime))) return null;
  return false;
}

function sqlstate(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

async function mainFilePending(q: Queryable): Promise<boolean | null> {
  try {
    const row = (await q.query<{ m: number | null; t: number | null }>(HBA_MAIN_MTIME_SQL)).rows[0];
    if (!row || row.m === null || row.t === null) return null;
    return changedAfterLoad(Number(row.m), Number(row.t), false);
  } catch (err) {
    if (sqlstate(err) === null) throw err;
    return null;
  }
}

export interface ReloadInput {
  /** The operator may call pg_stat_file(text) and read hba_file. */
  canStat: boolean;
  /** The raw files as read (their newest mtime covers includes and @files), or null. */
  raw: RawHba | null;
  /** The view shows rules from files other than the main one (16+ includes). */
  hasIncludes: boolean;
}

/** true / false, or null when it cannot be told (no pg_stat_file, an unknown include's mtime, the same second). */
export async function collectReloadPending(q: Queryable, input: ReloadInput): Promise<boolean | null> {
  const newestMtime = input.raw?.newestMtime ?? null;
  if (input.raw && newestMtime !== null) {
    const t = (await q.query<{ t: number | null }>(CONF_LOAD_TIME_SQL)).rows[0]?.t ?? null;
    return t === null ? null : changedAfterLoad(newestMtime, Number(t), input.raw.mtimePrecise);
  }
  const main = input.canStat ? await mainFilePending(q) : null;
  // the main file alone says nothing about the included files, unless it is pending itself
  if (main !== true && (input.raw !== null || input.hasIncludes)) return null;
  return main;
}
