// A log file's identity across polls and restarts: its first bytes (they hold the first entry's
// time, so a new file under the same name, or the same file truncated and written again, differs)
// plus, where the source can tell, its device and inode. Stored in LogCursor.identity as
// `head=<length>:<sha256 prefix>[;ino=<dev>:<ino>]`.
import { createHash } from 'node:crypto';

export const HEAD_BYTES = 1024;

export interface Identity {
  headLength: number;
  headHash: string;
  inode: string | null;
}

export function headHash(head: Buffer): string {
  return createHash('sha256').update(head).digest('hex').slice(0, 32);
}

export function identityText(head: Buffer, inode: string | null = null): string {
  return `head=${head.length}:${headHash(head)}${inode ? `;ino=${inode}` : ''}`;
}

export function parseIdentity(text: string | null): Identity | null {
  if (!text) return null;
  const m = /^head=(\d+):([0-9a-f]{32})(?:;ino=(\d+:\d+))?$/.exec(text);
  return m ? { headLength: Number(m[1]), headHash: m[2]!, inode: m[3] ?? null } : null;
}

/** Whether `head` (the file's first `identity.headLength` bytes now) is the same file's. */
export function sameHead(identity: Identity, head: Buffer): boolean {
  return head.length === identity.headLength && headHash(head) === identity.headHash;
}
