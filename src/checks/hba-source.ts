// The raw pg_hba.conf (and its @files and includes), read through the server (pg_read_file: superuser
// or EXECUTE granted) or from this host's file system, then tokenized with quotes kept. I/O only
// here; tokenizing is pure (src/hba/tokenize.ts).
import fs from 'node:fs/promises';
import path from 'node:path';
import { tokenizeHba, type TokenizedLine } from '../hba/tokenize.js';
import type { Queryable } from './types.js';

interface FileReader {
  read(file: string): Promise<string | null>;
  list(dir: string): Promise<string[] | null>;
  /** Modification time, seconds since the epoch; null when unknown. */
  mtime(file: string): Promise<number | null>;
}

export const HBA_READ_ACCESS_SQL = `SELECT pg_catalog.has_function_privilege('pg_catalog.pg_read_file(text)', 'EXECUTE') AS can_read,
       pg_catalog.has_function_privilege('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')
         AND pg_catalog.has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE') AS can_list`;
const READ_SQL = `SELECT pg_catalog.pg_read_file($1) AS content`;
const LIST_SQL = `SELECT d.name FROM pg_catalog.pg_ls_dir($1, true, false) AS d(name)
  WHERE NOT coalesce((pg_catalog.pg_stat_file($1 || '/' || d.name, true)).isdir, true)`;
const MTIME_SQL = `SELECT extract(epoch FROM (pg_catalog.pg_stat_file($1, true)).modification)::float8 AS t`;

function serverReader(q: Queryable, canList: boolean): FileReader {
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
      if (!canList) return null;
      const t = (await q.query<{ t: number | null }>(MTIME_SQL, [file])).rows[0]?.t;
      return t === null || t === undefined ? null : Number(t);
    },
  };
}

const localReader: FileReader = {
  read: (file) => fs.readFile(file, 'utf8').catch(() => null),
  list: async (dir) => {
    try {
      const names = await fs.readdir(dir);
      const isFile = await Promise.all(
        names.map((n) =>
          fs.stat(path.join(dir, n)).then(
            (s) => !s.isDirectory(),
            () => false,
          ),
        ),
      );
      return names.filter((_, i) => isFile[i]);
    } catch {
      return null;
    }
  },
  mtime: (file) =>
    fs.stat(file).then(
      (s) => s.mtimeMs / 1000,
      () => null,
    ),
};

export interface RawHba {
  source: 'server' | 'local';
  lines: TokenizedLine[];
  /** Newest modification time over every file read (includes and @files too); null when unknown. */
  newestMtime: number | null;
}

/** Load files until the tokenizer needs nothing more (each round resolves one level of includes). */
async function readWith(reader: FileReader, mainFile: string, includes: boolean): Promise<Omit<RawHba, 'source'> | null> {
  const files = new Map<string, string | null>();
  const dirs = new Map<string, string[] | null>();
  for (let round = 0; round < 64; round++) {
    const r = tokenizeHba(mainFile, { files, dirs }, { includes });
    if (!r.needFiles.length && !r.needDirs.length) {
      if (files.get(mainFile) === null) return null;
      const times = await Promise.all([...files].filter(([, c]) => c !== null).map(([f]) => reader.mtime(f)));
      const newestMtime = times.includes(null) ? null : Math.max(...(times as number[]));
      return { lines: r.lines, newestMtime };
    }
    for (const f of r.needFiles) files.set(f, await reader.read(f));
    for (const d of r.needDirs) dirs.set(d, await reader.list(d));
  }
  return null;
}

function isSqlError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * The raw file as the server reads it: through the server when the operator may call pg_read_file,
 * else from this host when it can read the path named by hba_file; null when neither works.
 */
export async function readRawHba(q: Queryable, mainFile: string, major: number): Promise<RawHba | null> {
  const includes = major >= 16;
  const access = (await q.query<{ can_read: boolean; can_list: boolean }>(HBA_READ_ACCESS_SQL)).rows[0];
  if (access?.can_read) {
    try {
      const r = await readWith(serverReader(q, access.can_list), mainFile, includes);
      if (r) return { source: 'server', ...r };
    } catch (err) {
      // e.g. the server may not read a file outside its data directory: try this host
      if (!isSqlError(err)) throw err;
    }
  }
  const r = await readWith(localReader, mainFile, includes);
  return r ? { source: 'local', ...r } : null;
}
