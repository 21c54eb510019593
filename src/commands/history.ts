// pgrevoke history [role]: the cutoff records in the state directory, newest last: which roles, on
// which nodes, when, with which playbook, how it ended, whether a restore has used it, and the file.
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode } from '../errors.js';
import { readRecords, type CutoffRecordFile } from '../record/journal.js';
import { serverOwnerWarning, sharedServerUid } from '../record/server-owner.js';
import { stateDirPath } from '../record/state-dir.js';
import { shownName, table, type Column } from '../report/format.js';
import { paramsFrom } from './common.js';

export interface HistoryEntry {
  startedAt: string;
  playbook: string;
  roles: string[];
  nodes: string[];
  /** contained (exit 0), exposed (1), failed (2, 3) from the report that closed it, or unfinished (cut short). */
  outcome: 'contained' | 'exposed' | 'failed' | 'unfinished';
  exitCode: number | null;
  restored: { node: string; role: string; at: string }[];
  file: string;
}

function entry(r: CutoffRecordFile): HistoryEntry {
  const code = r.end?.exitCode ?? null;
  return {
    startedAt: r.begin.startedAt,
    playbook: r.begin.playbook,
    roles: [...new Set(r.begin.nodes.flatMap((n) => n.plan.roles.map((x) => x.name)))],
    nodes: r.begin.nodes.map((n) => n.node),
    outcome: code === null ? 'unfinished' : code === 0 ? 'contained' : code === 1 ? 'exposed' : 'failed',
    exitCode: code,
    restored: r.restored,
    file: r.file,
  };
}

// started, roles and outcome stay; roles, nodes, restored are cut, the record path in its middle;
// playbook, restored, nodes, record go in that order (see table() in src/report/format.ts).
const HISTORY_COLUMNS: Column[] = [
  { head: 'started' },
  { head: 'playbook', drop: 1 },
  { head: 'roles', shrink: 10 },
  { head: 'nodes', shrink: 10, drop: 3 },
  { head: 'outcome' },
  { head: 'restored', shrink: 10, drop: 2 },
  { head: 'record', shrink: 24, cut: 'middle', drop: 4 },
];

/** As the server's OS user (told by its socket: history connects nowhere), a role that can write server files can write records too. */
async function ownerWarning(g: GlobalOptions): Promise<string | null> {
  let where;
  try {
    where = paramsFrom(g);
  } catch {
    return null;
  }
  const uid = await sharedServerUid(where, null);
  return uid === null ? null : serverOwnerWarning(uid, stateDirPath());
}

export async function run([role, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  void flags;
  const ctx = new Context(g);
  const warning = await ownerWarning(g);
  if (warning) ctx.note(warning);
  const name = role === undefined ? null : String(role);
  const records = (await readRecords()).map(entry).filter((e) => name === null || e.roles.includes(name));
  if (ctx.json) {
    ctx.printJson({ schemaVersion: 1, stateDir: stateDirPath(), role: name, records });
    return ExitCode.OK;
  }
  if (!records.length) {
    ctx.out(`no cutoff records${name ? ` of ${shownName(name)}` : ''} in ${stateDirPath()}`);
    return ExitCode.OK;
  }
  ctx.out(
    table(
      HISTORY_COLUMNS,
      records.map((e) => [
        e.startedAt,
        e.playbook,
        e.roles.join(', '),
        e.nodes.join(', '),
        e.exitCode === null ? e.outcome : `${e.outcome} (exit ${e.exitCode})`,
        e.restored.map((x) => `${x.role} ${x.at}`).join(', '),
        e.file,
      ]),
      ctx.c,
    ),
  );
  return ExitCode.OK;
}
