// The HBA step's file side: a marked reject block per role, prepended to pg_hba.conf (first match
// wins, so only the top is safe), written atomically with a backup, owner and mode preserved.
import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * A role name as a pg_hba.conf token. hba.c next_token(): inside double quotes, a literal double
 * quote is written as two; quoted, `all`/`+x`/`@x` are plain names.
 */
export function hbaQuote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Why a role name cannot be written exactly in pg_hba.conf, or null when it can. */
export function hbaInexpressible(name: string, major: number): string | null {
  if (/[\n\r]/.test(name)) return 'the role name contains a line break, which pg_hba.conf cannot express (a token cannot span lines)';
  if (name.includes('\0')) return 'the role name contains a NUL byte';
  if (major >= 16 && name.startsWith('/'))
    return 'PostgreSQL 16+ reads a user token that starts with "/" as a regular expression, even when quoted, so the name cannot be matched exactly';
  return null;
}

export function beginMarker(role: string): string {
  return `# pgrevoke cutoff BEGIN ${hbaQuote(role)}`;
}

export function endMarker(role: string): string {
  return `# pgrevoke cutoff END ${hbaQuote(role)}`;
}

/** The lines for one role. `all,replication` also covers physical replication connections. */
export function rejectBlock(role: string, at: Date): string[] {
  const r = hbaQuote(role);
  return [
    `${beginMarker(role)} ${at.toISOString()}`,
    `local all,replication ${r} reject`,
    `host all,replication ${r} all reject`,
    endMarker(role),
  ];
}

/** A block for this exact role is already in the file (its BEGIN marker starts a line). */
export function hasBlock(content: string, role: string): boolean {
  const marker = `${beginMarker(role)} `;
  return content.split('\n').some((line) => line.startsWith(marker) || line === beginMarker(role));
}

/** The file with a block for each role not yet present prepended; null when nothing is to add. */
export function withBlocks(content: string, roles: readonly string[], at: Date): { content: string; added: string[] } | null {
  const added = roles.filter((r) => !hasBlock(content, r));
  if (added.length === 0) return null;
  const lines = added.flatMap((r) => rejectBlock(r, at));
  return { content: `${lines.join('\n')}\n${content}`, added };
}

/** Whether this process can replace the file atomically: the file and its directory writable. */
export async function locallyWritable(file: string): Promise<string | null> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return `${file} is not a regular file here`;
  } catch {
    return `${file} does not exist on this machine`;
  }
  try {
    await fs.access(file, fsc.R_OK | fsc.W_OK);
    await fs.access(path.dirname(file), fsc.W_OK | fsc.X_OK);
  } catch {
    return `${file} is not writable by this process (or its directory is not)`;
  }
  return null;
}

export interface WriteResult {
  backup: string;
}

async function copyPreserving(from: string, to: string, mode: number, uid: number, gid: number, content?: Buffer | string): Promise<void> {
  const handle = await fs.open(to, 'wx', mode & 0o7777);
  try {
    await handle.writeFile(content ?? (await fs.readFile(from)));
    await handle.chmod(mode & 0o7777);
    await handle.chown(uid, gid).catch(() => undefined); // only root may give a file away; otherwise it is ours already
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Keep a backup beside the file, then replace it atomically (temp file + rename), owner and mode kept. */
export async function replaceFile(file: string, content: string, now = new Date()): Promise<WriteResult> {
  const st = await fs.stat(file);
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const backup = `${file}.pgrevoke-${stamp}.bak`;
  await copyPreserving(file, backup, st.mode, st.uid, st.gid);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.pgrevoke-${process.pid}.tmp`);
  await fs.rm(tmp, { force: true });
  try {
    await copyPreserving(file, tmp, st.mode, st.uid, st.gid, content);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return { backup };
}

/** Put the backup's bytes back (atomically, owner and mode kept). */
export async function restoreFile(file: string, backup: string): Promise<void> {
  const st = await fs.stat(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.pgrevoke-${process.pid}.restore`);
  await fs.rm(tmp, { force: true });
  await copyPreserving(backup, tmp, st.mode, st.uid, st.gid);
  await fs.rename(tmp, file);
}

/** The file without this role's block (BEGIN line through its END line); null when there is none. */
export function withoutBlock(content: string, role: string): string | null {
  const lines = content.split('\n');
  const begin = lines.findIndex((l) => l === beginMarker(role) || l.startsWith(`${beginMarker(role)} `));
  if (begin < 0) return null;
  const end = lines.findIndex((l, i) => i > begin && l === endMarker(role));
  if (end < 0) return null; // a block someone edited by hand: leave the file alone
  return [...lines.slice(0, begin), ...lines.slice(end + 1)].join('\n');
}
