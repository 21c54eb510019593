// Writing the lockout block into a node's pg_hba.conf: with cutoff's helpers (src/playbook/hba-lock.ts:
// both HBA locks; hba-file.ts: backup, atomic replace with mode and owner kept, restore, the
// after-the-fact check for a writer that took no lock), read afresh inside the locks, then reload
// and check pg_hba_file_rules: no error rows, and every rule of the block where it was written.
import { readFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { isBlockingHbaError } from '../hba/file-errors.js';
import { confirmEdit, replaceFile, restoreFile } from '../playbook/hba-file.js';
import { withHbaLock } from '../playbook/hba-lock.js';
import { canonicalAddress, targetRange } from './address.js';
import { blockRules, currentBlock, lockoutRule, withLockoutBlock, type BlockEdit } from './hba-block.js';
import { HBA_ERRORS_SQL, RELOAD_CONF, RULES_AT_SQL } from './sql.js';
import { readLockouts } from './store.js';
import type { Lockout, LockoutClient, LockoutNode } from './types.js';

/** `sync`: the block holds every lockout in force for the node; `remove`: only these ids come out, nothing else changes (unlock). */
export type HbaMode = { kind: 'sync' } | { kind: 'remove'; ids: ReadonlySet<string> };

export interface HbaOutcome {
  file: string;
  /** The file written (a link's target), null when it already was as it should be. */
  written: string | null;
  backup: string | null;
  /** Ids whose rules the file holds now. */
  present: Set<string>;
  /** Ids whose rule the file did not hold before and holds now; ids whose rule it held and no longer does. */
  added: string[];
  removed: string[];
}

/** The lockouts of a node that pg_hba.conf holds: address lockouts and bans not ended, in a stable order. */
export function hbaLockouts(list: readonly Lockout[], node: string): Lockout[] {
  return list
    .filter((l) => !l.ended && l.kind !== 'role' && l.nodes.includes(node))
    .sort((a, b) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id));
}

function planEdit(content: string, file: string, list: readonly Lockout[], node: string, mode: HbaMode, now: Date): BlockEdit | null {
  if (mode.kind === 'sync')
    return withLockoutBlock(content, hbaLockouts(list, node).map(lockoutRule), new Set(list.map((l) => l.id)), now, file);
  const current = blockRules(content, file);
  if (!current.some((r) => mode.ids.has(r.id))) return null;
  const keep = current.filter((r) => !mode.ids.has(r.id)).map((r) => r.line);
  return withLockoutBlock(content, keep, new Set(current.map((r) => r.id)), now, file);
}

function outcome(file: string, before: string, after: string, written: string | null, backup: string | null): HbaOutcome {
  const was = new Set(blockRules(before, file).map((r) => r.id));
  const present = new Set(blockRules(after, file).map((r) => r.id));
  return {
    file,
    written,
    backup,
    present,
    added: [...present].filter((id) => !was.has(id)),
    removed: [...was].filter((id) => !present.has(id)),
  };
}

/** What the edit would be, from the file as it is now: null when none is due (the quick path of every enforce). */
export async function pendingEdit(
  file: string,
  list: readonly Lockout[],
  node: string,
  mode: HbaMode,
  now: Date,
): Promise<{ content: string; edit: BlockEdit | null }> {
  const content = await readFile(file, 'utf8');
  return { content, edit: planEdit(content, file, list, node, mode, now) };
}

interface RuleRow {
  line_number: number;
  type: string;
  user_name: string[] | null;
  address: string | null;
  netmask: string | null;
  auth_method: string;
  error: string | null;
}

/** The server's address and netmask are the lockout's address or network (a prefix lockout's netmask checked too). */
function sameRange(r: RuleRow, target: string): boolean {
  const [net, bits] = targetRange(target);
  const mask = net.kind() === 'ipv4' ? ipaddr.IPv4.subnetMaskFromPrefixLength(bits) : ipaddr.IPv6.subnetMaskFromPrefixLength(bits);
  return canonicalAddress(r.address) === net.toString() && canonicalAddress(r.netmask) === mask.toString();
}

/** After the reload: the server reads each rule of the block where it was written, as the lockout says. */
async function checkRules(client: LockoutClient, edit: BlockEdit, byId: Map<string, Lockout>, file: string): Promise<void> {
  if (!edit.ruleLines.length) return;
  const rows = (await client.query<RuleRow>({ text: RULES_AT_SQL, values: [edit.ruleLines] })).rows;
  const wrong: string[] = [];
  edit.ruleLines.forEach((n, i) => {
    const id = /# pgrevoke lockout ([0-9a-f]{16}) /.exec(edit.block[i + 1] ?? '')?.[1];
    const l = id ? byId.get(id) : undefined;
    const ok = rows.some(
      (r) =>
        r.line_number === n &&
        r.error === null &&
        r.auth_method === 'reject' &&
        r.type === 'host' &&
        (!l || (sameRange(r, l.address!) && r.user_name?.length === 1 && r.user_name[0] === (l.role ?? 'all'))),
    );
    if (!ok) wrong.push(`line ${n}`);
  });
  if (wrong.length)
    throw new Error(
      `the server's pg_hba_file_rules does not show the lockout rules at ${wrong.join(', ')} of ${file}: is it the server's hba_file?`,
    );
}

/** A block already in the file, unchanged: reloaded, no error rows, each rule read where it stands. */
async function verifyBlock(client: LockoutClient, edit: BlockEdit, list: readonly Lockout[], file: string): Promise<void> {
  await client.query({ text: RELOAD_CONF });
  const errors = (await client.query<{ line_number: number; error: string }>({ text: HBA_ERRORS_SQL })).rows.filter((r) =>
    isBlockingHbaError(r.error),
  );
  if (errors.length)
    throw new Error(
      `pg_hba_file_rules shows error rows (${errors.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}): the lockout lines there are not in force`,
    );
  await checkRules(client, edit, new Map(list.map((l) => [l.id, l])), file);
}

/**
 * Bring the node's file to what `mode` asks, under both HBA locks, from the file as it is inside
 * them (and, for `sync`, the lockouts as on file then: another engine's new lockout is kept).
 * Error rows after the reload put the backup back (and reload again) and throw. `verify`: with no
 * edit due, reload and check the block as it stands all the same (its rules were never checked).
 */
export async function editHba(
  node: LockoutNode,
  client: LockoutClient,
  file: string,
  mode: HbaMode,
  opts: { env: NodeJS.ProcessEnv; now: Date; verify?: boolean },
): Promise<HbaOutcome> {
  return withHbaLock({ params: node.params, env: opts.env }, file, async (target) => {
    const list = mode.kind === 'sync' ? await readLockouts(opts.env) : [];
    const content = await readFile(target, 'utf8');
    const edit = planEdit(content, file, list, node.name, mode, opts.now) ?? (opts.verify ? currentBlock(content, file) : null);
    if (!edit) return outcome(file, content, content, null, null);
    if (edit.content === content) {
      await verifyBlock(client, edit, list, file);
      return outcome(file, content, content, target, null);
    }
    const blocking = (await client.query<{ line_number: number; error: string }>({ text: HBA_ERRORS_SQL })).rows.filter((r) =>
      isBlockingHbaError(r.error),
    );
    if (blocking.length)
      throw new Error(
        `${file} already has error rows (${blocking.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}): a reload would be refused whole, so the lockout lines could not take effect; fix the file first`,
      );
    const { backup } = await replaceFile(target, edit.content, opts.now, opts.env);
    await client.query({ text: RELOAD_CONF });
    const errors = (await client.query<{ line_number: number; error: string }>({ text: HBA_ERRORS_SQL })).rows.filter((r) =>
      isBlockingHbaError(r.error),
    );
    if (errors.length) {
      await restoreFile(target, backup);
      await client.query({ text: RELOAD_CONF });
      throw new Error(
        `pg_hba_file_rules shows error rows after the lockout edit (${errors.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}); the backup was put back and reloaded`,
      );
    }
    await checkRules(client, edit, new Map(list.map((l) => [l.id, l])), file);
    if (edit.block.length) await confirmEdit(target, { added: [edit.block] });
    const after = await readFile(target, 'utf8');
    const result = outcome(file, content, after, target, backup);
    const lost = mode.kind === 'remove' ? [...mode.ids].filter((id) => result.present.has(id)) : [];
    if (lost.length)
      throw new Error(`${target} was changed by another writer during the edit: the lockout lines of ${lost.join(', ')} are in it again`);
    return result;
  });
}
