// Reading a file of the state directory that someone else could have planted or swapped: opened
// never through a link (O_NOFOLLOW) and without blocking (O_NONBLOCK: a FIFO put there does not hang
// the open), and used only when it is a regular file of this user that its group and others cannot
// write, and not over a size cap. The one reader of lockouts.json, lockout-tally.json, the log
// cursors, the SCIM users, and serve's journal and own-cutoffs ledger; each caller says, in its own
// words, what a refused file is to it.
import { constants as C, promises as fs } from 'node:fs';

/** Why a state file was not used: `why` in the common words, the rest for a caller with its own. */
export type StateFileRefusal =
  | { kind: 'link' }
  | { kind: 'not-file' }
  | { kind: 'owner'; uid: number }
  | { kind: 'mode'; mode: number }
  | { kind: 'size'; size: number }
  | { kind: 'json'; detail: string };

/** The common words for `r`. */
export function refusalText(r: StateFileRefusal): string {
  switch (r.kind) {
    case 'link':
      return 'it is a symbolic link';
    case 'not-file':
      return 'it is not a regular file';
    case 'owner':
      return `it belongs to uid ${r.uid}, not to this user`;
    case 'mode':
      return `it is writable by its group or others (mode ${(r.mode & 0o777).toString(8).padStart(4, '0')})`;
    case 'size':
      return `it is ${r.size} bytes, far more than pgrevoke writes there`;
    case 'json':
      return `it is not JSON (${r.detail})`;
  }
}

export type Refuse = (why: string, r: StateFileRefusal) => Error;

/**
 * The text of `file` (undefined when there is no file), refused (`refuse(why, r)`, thrown) when it
 * is a link, not a regular file, another user's, writable by others, or over `maxBytes`. Other
 * errors (of open or read) are thrown as they are.
 */
export async function readStateText(file: string, maxBytes: number, refuse: Refuse): Promise<string | undefined> {
  const no = (r: StateFileRefusal): Error => refuse(refusalText(r), r);
  let h: fs.FileHandle;
  try {
    h = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw no({ kind: 'link' });
    throw err;
  }
  try {
    const st = await h.stat();
    const me = process.getuid?.();
    if (!st.isFile()) throw no({ kind: 'not-file' });
    if (me !== undefined && st.uid !== me) throw no({ kind: 'owner', uid: st.uid });
    if (st.mode & 0o022) throw no({ kind: 'mode', mode: st.mode });
    if (st.size > maxBytes) throw no({ kind: 'size', size: st.size });
    return await h.readFile('utf8');
  } finally {
    await h.close();
  }
}

/**
 * The JSON document in `file` (undefined when there is no file): readStateText's checks, and
 * refused too when it is not JSON.
 */
export async function readStateJson(file: string, maxBytes: number, refuse: Refuse): Promise<unknown> {
  const text = await readStateText(file, maxBytes, refuse);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const r: StateFileRefusal = { kind: 'json', detail: (err as Error).message };
    throw refuse(refusalText(r), r);
  }
}
