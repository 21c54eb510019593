// The raw pg_hba.conf (and its @files and includes), read through the server (pg_read_file: superuser
// or EXECUTE granted) or from this host's file system, then tokenized with quotes kept. I/O only
// here; tokenizing is pure (src/hba/tokenize.ts).
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { tokenizeHba, type TokenizedLine } from '../hba/tokenize.js';
import type { Queryable } from './types.js';

interface FileReader {
  read(file: string): Promise<string | null>;
  list(dir: string): Promise<string[] | null>;
  /** Modification time, seconds since the epoch; null when unknown. */
  mtime(file: string): Promise<number | null>;
}

export const HBA_READ_ACCESS_SQL = `SELECT pg_catalog.has_function_privilege('pg_catalog.pg_read_file(text)', 'EXECUTE') AS can_read,
       pg_catalog.has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE') AS can_stat,
       pg_catalog.has_function_privilege('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')
         AND pg_catalog.has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE') AS can_list`;
const READ_SQL = `SELECT pg_catalog.pg_read_file($1) AS content`;
const LIST_SQL = `SELECT d.name FROM pg_catalog.pg_ls_dir($1, true, false) AS d(name)
  WHERE NOT coalesce((pg_catalog.pg_stat_file($1 || '/' || d.name, true)).isdir, true)`;
const MTIME_SQL = `SELECT extract(epoch FROM (pg_catalog.pg_stat_file($1, true)).modification)::float8 AS t`;

interface ReadAccess {
  can_read: boolean;
  can_stat: boolean;
  can_list: boolean;
}

function serverReader(q: Queryable, { can_list: canList, can_stat: canStat }: ReadAccess): FileReader {
  return {
    read: async (file) => {
      try {
        return (await q.query<{ content: string | null }>(READ_SQL, [file])).rows[0]?.content ?? null;
      } catch (err) {
        // 58P01: no such file (an include_if_exists target, a missing @file); any other error ends the server read
        if ((err as { code?: unknown }).code === '58P01') return null;
        throw err;
      }
    },
    list: async (dir) => (canList ? (await q.query<{ name: string }>(LIST_SQL, [dir])).rows.map((r) => r.name) : null),
    mtime: async (file) => {
      if (!canStat) return null;
      const t = (await q.query<{ t: number | null }>(MTIME_SQL, [file])).rows[0]?.t;
      return t === null || t === undefined ? null : Number(t);
    },
  };
}

const SERVER_STAT_SQL = `SELECT s.size::float8 AS size, extract(epoch FROM s.modification)::float8 AS t
  FROM pg_catalog.pg_stat_file($1, true) AS s`;
/** The server's side of the connection is a Unix socket (NULL) or loopback: the client runs on the server's host. */
const SAME_HOST_SQL = `SELECT coalesce(pg_catalog.inet_server_addr() <<= '127.0.0.0/8'::inet
       OR pg_catalog.inet_server_addr() = '::1'::inet, true) AS same_host`;

/** A local file differs from the server's at the same path (another host, another mount namespace). */
class NotServersFile extends Error {}

/**
 * This host's stat of `file` when it is provably the server's file: the size and modification
 * second pg_stat_file reports for it (the caller checked the connection is local). Undefined when
 * neither side has the file; throws NotServersFile when they differ.
 */
async function statAsServer(q: Queryable, file: string): Promise<Stats | undefined> {
  const st = await fs.stat(file).catch(() => null);
  const row = (await q.query<{ size: number | null; t: number | null }>(SERVER_STAT_SQL, [file])).rows[0];
  const size = row?.size ?? null;
  if (size === null && st === null) return undefined;
  if (st === null || size !== st.size || row?.t !== Math.floor(st.mtimeMs / 1000)) throw new NotServersFile(file);
  return st;
}

/**
 * This host's files, used only where each one is provably the server's (statAsServer); directories
 * are listed by the server. Modification times are this host's, finer than pg_stat_file's seconds.
 */
function localReader(q: Queryable, server: FileReader): FileReader {
  return {
    read: async (file) => ((await statAsServer(q, file)) ? fs.readFile(file, 'utf8') : null),
    list: server.list,
    // a file system with whole-second stamps gives no sub-second time: leave it to pg_stat_file's
    mtime: async (file) => {
      const st = await statAsServer(q, file);
      return st && st.mtimeMs % 1000 !== 0 ? st.mtimeMs / 1000 : null;
    },
  };
}

export interface RawHba {
  source: 'server' | 'local';
  lines: TokenizedLine[];
  /** Newest modification time over every file read (includes and @files too); null when unknown. */
  newestMtime: number | null;
  /** newestMtime has sub-second resolution (this host's stat); else whole seconds (pg_stat_file). */
  mtimePrecise: boolean;
}

/** Load files until the tokenizer needs nothing more (each round resolves one level of includes). */
async function readWith(
  reader: FileReader,
  mainFile: string,
  includes: boolean,
): Promise<{ lines: TokenizedLine[]; files: string[] } | null> {
  const files = new Map<string, string | null>();
  const dirs = new Map<string, string[] | null>();
  for (let round = 0; round < 64; round++) {
    const r = tokenizeHba(mainFile, { files, dirs }, { includes });
    if (!r.needFiles.length && !r.needDirs.length) {
      if (files.get(mainFile) === null) return null;
      return { lines: r.lines, files: [...files].filter(([, c]) => c !== null).map(([f]) => f) };
    }
    for (const f of r.needFiles) files.set(f, await reader.read(f));
    for (const d of r.needDirs) dirs.set(d, await reader.list(d));
  }
  return null;
}

/** The newest modification time (seconds since the epoch) over `files`; null when one is unknown. */
async function newest(reader: FileReader, files: string[]): Promise<number | null> {
  const times = await Promise.all(files.map((f) => reader.mtime(f)));
  return times.includes(null) ? null : Math.max(...(times as number[]));
}

function isSqlError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/** Undefined when the local files are not provably the server's (another host, or a difference). */
async function orNotServers<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof NotServersFile || isSqlError(err)) return undefined;
    throw err;
  }
}

/**
 * The raw file as the server reads it: through the server when the operator may call pg_read_file,
 * else from this host when its files are provably the server's (pg_stat_file agrees, the
 * connection is local); null otherwise, and the caller evaluates the view alone. Modification
 * times come from this host where its files are provably the server's (sub-second), else from
 * pg_stat_file (whole seconds).
 */
export async function readRawHba(q: Queryable, mainFile: string, major: number): Promise<RawHba | null> {
  const includes = major >= 16;
  const access = (await q.query<ReadAccess>(HBA_READ_ACCESS_SQL)).rows[0] ?? { can_read: false, can_stat: false, can_list: false };
  const server = serverReader(q, access);
  // pg_stat_file is what proves a local file is the server's: without it, never use one
  const local =
    access.can_stat && (await q.query<{ same_host: boolean }>(SAME_HOST_SQL)).rows[0]?.same_host ? localReader(q, server) : null;
  let read: { lines: TokenizedLine[]; files: string[]; source: RawHba['source'] } | null = null;
  if (access.can_read) {
    try {
      const r = await readWith(server, mainFile, includes);
      if (r) read = { ...r, source: 'server' };
    } catch (err) {
      // e.g. a NUL byte (invalid in text) or a file outside the data directory: try this host
      if (!isSqlError(err)) throw err;
    }
  }
  if (!read && local) {
    const r = await orNotServers(() => readWith(local, mainFile, includes));
    if (r) read = { ...r, source: 'local' };
  }
  if (!read) return null;
  const precise = local ? await orNotServers(() => newest(local, read.files)) : undefined;
  if (precise !== undefined && precise !== null)
    return { source: read.source, lines: read.lines, newestMtime: precise, mtimePrecise: true };
  return { source: read.source, lines: read.lines, newestMtime: await newest(server, read.files), mtimePrecise: false };
}
