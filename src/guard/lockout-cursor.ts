// Where guard's log reader stood on each node, kept in the state directory across guard restarts
// (issue 16): failures logged while guard was down are read (and counted, within the window) when
// it starts again, and lines already counted are not read twice. One file per node and source,
// named by a hash of the node's name, the server's system identifier (a node rebuilt under the same
// name is another server: its cursor does not apply) and the source (SQL, or --server-log FILE).
// Read never through a link, from a regular file of this user that others cannot write, and
// schema-checked: anything else is ignored with one warning (the reader then starts at the end).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { writeFileSafe } from '../record/safe-write.js';
import { readStateJson, refusalText, type StateFileRefusal } from '../record/state-file.js';
import { openStateDir } from '../record/state-dir.js';
import type { LogCursor } from '../serverlog/types.js';

export const CURSOR_DIR = 'log-cursors';
const CURSOR_VERSION = 1;
/** A cursor is a few hundred bytes: anything far larger is not one. */
const MAX_BYTES = 64 * 1024;
const MAX_PATH = 4096;
/** Why a cursor file was not used, in the warning's own (short) words. */
function short(r: StateFileRefusal): string {
  switch (r.kind) {
    case 'owner':
      return `it belongs to uid ${r.uid}`;
    case 'mode':
      return 'it is writable by its group or others';
    case 'size':
      return `it is ${r.size} bytes`;
    case 'json':
      return 'it is not JSON';
    default:
      return refusalText(r);
  }
}
const IDENTITY = /^head=\d+:[0-9a-f]{32}(?:;ino=\d+:\d+)?$/;

export interface CursorKey {
  node: string;
  /** pg_control_system()'s, as text; null where it is not granted (the name alone keys it). */
  systemIdentifier: string | null;
  /** `sql`, or `file:<path>` for --server-log. */
  source: string;
}

export interface LoadedCursor {
  cursor: LogCursor | null;
  /** Why a file that was there was not used (said once), or null. */
  ignored: string | null;
}

function fileName(k: CursorKey): string {
  return `${createHash('sha256')
    .update(JSON.stringify([k.node, k.systemIdentifier, k.source]))
    .digest('hex')
    .slice(0, 32)}.json`;
}

export async function cursorPath(k: CursorKey, env: NodeJS.ProcessEnv): Promise<string> {
  return path.join(await openStateDir(env, CURSOR_DIR), fileName(k));
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The cursor in `doc`, if it is one of this key's; else why not. */
export function checkCursor(doc: unknown, k: CursorKey): LogCursor | string {
  if (!isObj(doc) || doc.v !== CURSOR_VERSION) return `not a version ${CURSOR_VERSION} cursor`;
  if (doc.node !== k.node || doc.systemIdentifier !== k.systemIdentifier || doc.source !== k.source)
    return 'it names another node, server or source';
  const c = doc.cursor;
  if (!isObj(c)) return 'no cursor';
  const { file, offset, identity } = c;
  if (typeof file !== 'string' || !file || file.length > MAX_PATH || file.includes('\0') || file.split(/[\\/]/).includes('..'))
    return 'its file is not a plain path';
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return 'its offset is not a byte offset';
  if (identity !== null && (typeof identity !== 'string' || !IDENTITY.test(identity))) return 'its identity is not one';
  return { file, offset, identity };
}

/** The saved cursor of `k`; none (and why) when there is no usable one. Never throws for a bad file. */
export async function loadCursor(k: CursorKey, env: NodeJS.ProcessEnv): Promise<LoadedCursor> {
  const file = await cursorPath(k, env);
  let doc: unknown;
  try {
    doc = await readStateJson(file, MAX_BYTES, (_why, r) => new Error(short(r)));
  } catch (err) {
    // refused, or the open failed: either way the reader starts at the end
    return { cursor: null, ignored: `${file}: ${(err as Error).message}` };
  }
  if (doc === undefined) return { cursor: null, ignored: null };
  const c = checkCursor(doc, k);
  return typeof c === 'string' ? { cursor: null, ignored: `${file}: ${c}` } : { cursor: c, ignored: null };
}

/** Save `cursor` as `k`'s (mode 0600, replaced atomically: a crash leaves the old one or the new one). */
export async function saveCursor(k: CursorKey, cursor: LogCursor, env: NodeJS.ProcessEnv, now = new Date()): Promise<void> {
  const doc = { v: CURSOR_VERSION, ...k, cursor, savedAt: now.toISOString() };
  await writeFileSafe(await cursorPath(k, env), `${JSON.stringify(doc)}\n`);
}
