// What the engine learns once per connection of a node: who it is there (its login role and the
// address it connects from are never locked out: a ban of its own address would lock guard out
// of reconnecting), whether the node is a standby (no ALTER ROLE there), and which pg_hba.conf on
// this host is the node's (as cutoff decides it: given, or the server's hba_file when it is local,
// writable and holds the same bytes).
import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import { locallyWritable } from '../playbook/hba-file.js';
import { canonicalAddress } from './address.js';
import { NODE_FACTS_SQL, SERVER_HBA_CONTENT_SQL } from './sql.js';
import type { LockoutClient, LockoutNode } from './types.js';

export interface NodeFacts {
  user: string;
  /** The address this session connects from (null over a Unix socket). */
  address: string | null;
  standby: boolean;
  major: number;
  /** The node's pg_hba.conf on this host, or null with why not. */
  hbaFile: string | null;
  hbaWhy: string | null;
}

const cache = new WeakMap<LockoutClient, NodeFacts>();

async function hbaOf(
  client: LockoutClient,
  node: LockoutNode,
  serverFile: string | null,
): Promise<{ file: string | null; why: string | null }> {
  if (node.hbaFile === null) return { file: null, why: 'no pg_hba.conf was given for this node' };
  const file = node.hbaFile ?? serverFile;
  if (!file)
    return {
      file: null,
      why: 'hba_file is not visible to this user (needs superuser or pg_read_all_settings): pass the file (--hba-file)',
    };
  const local = await locallyWritable(file);
  if (local) return { file: null, why: local };
  if (node.hbaFile !== undefined) return { file, why: null };
  // the same path here is no proof it is the server's file: compare the bytes
  try {
    const theirs = (await client.query<{ content: string }>({ text: SERVER_HBA_CONTENT_SQL })).rows[0]?.content;
    if (theirs !== (await readFile(file, 'utf8')))
      return { file: null, why: `${file} here differs from the server's file (another machine)` };
  } catch (err) {
    return { file: null, why: `the server's pg_hba.conf could not be read to compare with ${file}: ${describeError(err)}` };
  }
  return { file, why: null };
}

/** The node's facts for this connection (read once per client: a reconnect reads them again). */
export async function nodeFacts(node: LockoutNode, client: LockoutClient): Promise<NodeFacts> {
  const known = cache.get(client);
  if (known) return known;
  const r = (
    await client.query<{ user: string; address: string | null; standby: boolean; num: number; hba_file: string | null }>({
      text: NODE_FACTS_SQL,
    })
  ).rows[0]!;
  const hba = await hbaOf(client, node, r.hba_file);
  const facts: NodeFacts = {
    user: r.user,
    address: canonicalAddress(r.address),
    standby: r.standby,
    major: Math.floor(r.num / 10000),
    hbaFile: hba.file,
    hbaWhy: hba.why,
  };
  cache.set(client, facts);
  return facts;
}
