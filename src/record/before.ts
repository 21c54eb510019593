// A rerun after a cut-short (or any unrestored) cutoff: the role now looks the way a cutoff leaves
// it (NOLOGIN, CONNECTION LIMIT 0), so its "before" must come from the record of the run that did
// that, or a restore from the rerun's record would bring back NOLOGIN and lose stripped attributes.
import type { Plan } from '../playbook/model.js';
import { restoreRole } from '../playbook/sql.js';
import { latestUnrestored, type CutoffRecordFile } from './journal.js';

/** Replace the before-state of the plan's roles that a recorded cutoff left changed; returns what it said. */
export function takeRecordedBefore(plan: Plan, records: readonly CutoffRecordFile[], systemIdentifier: string | null): string[] {
  const said: string[] = [];
  for (const role of plan.roles) {
    const b = role.before;
    if (b.canLogin || b.connectionLimit !== 0) continue;
    const found = latestUnrestored(records, { role: role.name, node: plan.node, oid: role.oid, systemIdentifier });
    if (!found) continue;
    role.before = { ...found.role.before };
    role.beforeFrom = found.record.file;
    role.restoreSql = restoreRole({ name: role.name, ...role.before });
    const how = found.record.end ? `finished with exit ${found.record.end.exitCode}` : 'cut short';
    said.push(
      `${JSON.stringify(role.name)}: before-state taken from the record of the cutoff of ${found.record.begin.startedAt} (${how}, ${found.record.file}), not from the role as that run left it`,
    );
  }
  plan.warnings.push(...said);
  return said;
}
