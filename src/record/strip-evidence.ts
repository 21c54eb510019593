// Following a rerun's before-state back through the records it came from, to the cutoff that
// stripped SUPERUSER/CREATEROLE (restore grants them back only with that evidence).
import { strippedBy } from '../playbook/strip-evidence.js';
import { readRecords } from './journal.js';

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
  let file = beforeFrom ?? null;
  for (let depth = 0; file !== null && depth < 20; depth++) {
    const rec = records.find((r) => r.file === file);
    const entry = rec?.begin.nodes.flatMap((n) => n.plan.roles.map((r) => ({ plan: n.plan, role: r }))).find((x) => x.role.name === role);
    if (!entry) return false;
    if (strippedBy(entry.plan, role)) return true;
    file = entry.role.beforeFrom ?? null;
  }
  return false;
}
