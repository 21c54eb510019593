// Following a rerun's before-state back through the records it came from, to the cutoff that
// stripped SUPERUSER/CREATEROLE (restore grants them back only with that evidence).
import { strippedBy } from '../playbook/strip-evidence.js';
import { beforeChain, readRecords } from './journal.js';

/**
 * Whether the cutoff whose record a before-state came from (following earlier records back) took
 * SUPERUSER/CREATEROLE from `role`: the evidence restore needs before it grants them back. Only
 * records in this state directory count: a report can name any file.
 */
export async function strippedEarlier(
  beforeFrom: string | null | undefined,
  role: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const records = await readRecords(env).catch(() => []);
  return beforeChain(records, beforeFrom, role).some((x) => strippedBy(x.plan, role));
}
