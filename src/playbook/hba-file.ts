// The HBA step's file side: a marked reject block per role, prepended to pg_hba.conf (first match
// wins, so only the top is safe), written atomically (src/record/safe-write.ts) with a backup in the
// state directory, mode and owner preserved. Callers hold the HBA locks (hba-lock.ts) around it.
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsc, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { writeFileSafe, type WriteOptions } from '../record/safe-write.js';
import { openStateDir } from '../record/state-dir.js';

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

/**
 * The rules that reject one role, as cutoff writes them (inside its markers) and inspect's
 * hba.not_rejected remediation shows them. `all,replication` also covers physical replication.
 */
export function rejectRules(role: string): string[] {
  const r = hbaQuote(role);
  return [`local all,replication ${r} reject`, `host all,replication ${r} all reject`];
}

/** The lines for one role: its rules between markers (restore finds the block by them). */
export function rejectBlock(role: string, at: Date): string[] {
  return [`${beginMarker(role)} ${at.toISOString()}`, ...rejectRules(role), endMarker(role)];
}

/** A block for this exact role is already in the file (its BEGIN marker starts a line). */
export function hasBlock(content: string, role: string): boolean {
  const marker = `${beginMarker(role)} `;
  return content.split('\n').some((line) => line.startsWith(marker) || line === beginMarker(role));
}

/** The file with a block for each role not yet present prepended (`blocks`: their lines); null when nothing is to add. */
export function withBlocks(
  content: string,
  roles: readonly string[],
  at: Date,
): { content: string; added: string[]; blocks: string[][] } | null {
  const added = roles.filter((r) => !hasBlock(content, r));
  if (added.length === 0) return null;
  const blocks = added.map((r) => rejectBlock(r, at));
  return { content: `${blocks.flat().join('\n')}\n${content}`, added, blocks };
}

/** What of an edit the file no longer shows: an added block (its exact lines) missing, a removed role's block back. */
export function lostEdits(content: string, edit: { added?: readonly string[][]; removed?: readonly string[] }): string[] {
  const lines = content.split('\n');
  const present = (block: readonly string[]) => lines.some((_, i) => block.every((b, j) => lines[i + j] === b));
  return [
    ...(edit.added ?? []).filter((b) => !present(b)).map((b) => `the block "${b[0]}" is not in it`),
    ...(edit.removed ?? []).filter((r) => hasBlock(content, r)).map((r) => `a pgrevoke block for ${hbaQuote(r)} is in it again`),
  ];
}

/**
 * Re-read the file after the reload and check: throw unless it still holds this edit. The locks
 * keep pgrevoke processes apart; this catches a writer that took neither (an editor, another tool,
 * an older pgrevoke), so that "done" is never said of a block the file does not have.
 */
export async function confirmEdit(target: string, edit: { added?: readonly string[][]; removed?: readonly string[] }): Promise<void> {
  const lost = lostEdits(await fs.readFile(target, 'utf8'), edit);
  if (lost.length)
    throw new Error(
      `${target} was changed by another writer during the edit: ${lost.join('; ')}; edit it again (the server has reloaded what the file holds now)`,
    );
}

/** Whether this process can replace the file atomically: the file (a link's target) and its directory writable. */
export async function locallyWritable(file: string): Promise<string | null> {
  let target: string;
  try {
    target = await fs.realpath(file);
    const st = await fs.stat(target);
    if (!st.isFile()) return `${file} is not a regular file here`;
  } catch {
    return `${file} does not exist on this machine`;
  }
  try {
    await fs.access(target, fsc.R_OK | fsc.W_OK);
    await fs.access(path.dirname(target), fsc.W_OK | fsc.X_OK);
  } catch {
    return `${target} is not writable by this process (or its directory is not)`;
  }
  return null;
}

export interface WriteResult {
  /** The file written: the real path, when pg_hba.conf is a link (the link is kept). */
  written: string;
  backup: string;
}

/** How many backups of one file the state directory keeps (older ones are pruned after each edit). */
export const KEEP_BACKUPS = 20;

/** The file's mode, and its owner where this process may give it (root): what the replacement keeps. */
function keepOf(st: Stats): WriteOptions {
  return { mode: st.mode & 0o7777, owner: process.getuid?.() === 0 ? { uid: st.uid, gid: st.gid } : undefined };
}

/** Backups of one file share a prefix: its name and a hash of its real path. */
function backupPrefix(target: string): string {
  return `${path.basename(target)}.${createHash('sha256').update(target).digest('hex').slice(0, 8)}.`;
}

/** Remove all but the newest KEEP_BACKUPS of this file's backups (names sort by time), never `keep`. */
async function pruneBackups(dir: string, prefix: string, keep: string): Promise<void> {
  const mine = (await fs.readdir(dir)).filter((f) => f.startsWith(prefix) && f.endsWith('.bak')).sort();
  const old = mine.slice(0, Math.max(0, mine.length - KEEP_BACKUPS)).filter((f) => path.join(dir, f) !== keep);
  await Promise.all(old.map((f) => fs.unlink(path.join(dir, f)).catch(() => undefined)));
}

/**
 * Back the file up into the state directory, then replace it atomically, mode (and, as root, owner)
 * kept. A link is followed and its target written: the link stays. Backups are private (0600), named
 * by time plus random bytes (two in one millisecond differ), and pruned to the last KEEP_BACKUPS.
 */
export async function replaceFile(
  file: string,
  content: string,
  now = new Date(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<WriteResult> {
  const target = await fs.realpath(file);
  const st = await fs.stat(target);
  const dir = await openStateDir(env, 'hba-backups');
  const prefix = backupPrefix(target);
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const backup = path.join(dir, `${prefix}${stamp}.${randomBytes(6).toString('hex')}.bak`);
  await writeFileSafe(backup, await fs.readFile(target));
  await writeFileSafe(target, content, keepOf(st));
  await pruneBackups(dir, prefix, backup);
  return { written: target, backup };
}

/** Put the backup's bytes back into the file (its link's target), atomically, mode and owner kept. */
export async function restoreFile(file: string, backup: string): Promise<void> {
  const target = await fs.realpath(file);
  await writeFileSafe(target, await fs.readFile(backup), keepOf(await fs.stat(target)));
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
