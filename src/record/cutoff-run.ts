// cutoff's use of the record store: open the record before the first change (or change nothing),
// append each step as it ends, close it with the report; and, before planning is shown, take the
// before-state of a role a recorded cutoff left changed from that record.
import { ExitCode, PgrevokeError } from '../errors.js';
import type { ReportStep } from './cutoff-report.js';
import type { Plan } from '../playbook/model.js';
import { takeRecordedBefore } from './before.js';
import { CutoffRecord, readRecords, type StepOutcome } from './journal.js';

/** Plans whose roles look cut off (NOLOGIN, limit 0) get their before-state from the records; no read otherwise. */
export async function recordedBefores(
  nodes: readonly { plan: Plan; systemIdentifier: string | null }[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const looksCut = nodes.some((n) => n.plan.roles.some((r) => !r.before.canLogin && r.before.connectionLimit === 0));
  if (!looksCut) return;
  const records = await readRecords(env);
  for (const n of nodes) takeRecordedBefore(n.plan, records, n.systemIdentifier);
}

/** The record, durable before anything changes; a state directory that cannot take it refuses the cutoff. */
export async function openRecord(
  nodes: readonly { plan: Plan; standby: boolean; systemIdentifier: string | null }[],
  meta: { playbook: string; operator: { osUser: string; host: string }; reasonText: string | null },
  env: NodeJS.ProcessEnv = process.env,
): Promise<CutoffRecord> {
  try {
    return await CutoffRecord.begin(
      {
        startedAt: new Date().toISOString(),
        ...meta,
        nodes: nodes.map((n) => ({ node: n.plan.node, systemIdentifier: n.systemIdentifier, standby: n.standby, plan: n.plan })),
      },
      env,
    );
  } catch (err) {
    if (err instanceof PgrevokeError) throw err;
    throw new PgrevokeError(`could not write the cutoff record before the first change (${(err as Error).message}); nothing was changed`, {
      exitCode: ExitCode.USAGE,
      hint: 'pgrevoke records every cutoff in its state directory first; set PGREVOKE_STATE_DIR to a directory of yours that can be written',
    });
  }
}

export function stepOutcome(step: ReportStep): StepOutcome {
  return {
    index: step.index,
    action: step.action,
    status: step.status,
    detail: step.detail,
    database: step.database,
    role: step.role,
    ...(step.file ? { file: step.file } : {}),
    executed: step.executed,
    durationMs: step.durationMs,
  };
}

/** Close the record with the report; a failure is said, and makes a clean run's exit 3 (the record is incomplete). */
export async function closeRecord(
  record: CutoffRecord | null,
  exitCode: number,
  report: unknown,
  say: (line: string) => void,
): Promise<number> {
  if (!record) return exitCode;
  try {
    await record.end(exitCode, report);
    say(`pgrevoke: recorded in ${record.file}`);
    return exitCode;
  } catch (err) {
    say(`pgrevoke: the record ${record.file} could not be completed: ${(err as Error).message}`);
    return exitCode === ExitCode.OK || exitCode === ExitCode.EXPOSED ? ExitCode.PARTIAL : exitCode;
  }
}
