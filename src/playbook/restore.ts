// restore: undo what a cutoff changed, for a false alarm. The SQL is rebuilt from the report's
// recorded attributes by the same builders (never taken as text from the file: a report is data).
import { readFileSync } from 'node:fs';
import { ExitCode, PgrevokeError } from '../errors.js';
import { withoutBlock } from './hba-file.js';
import { checkSource, type RestoreSource } from './restore-source.js';
import { strippedBy } from './strip-evidence.js';
import { RELOAD_CONF, restoreRole } from './sql.js';

export type { RestoreSource };

export interface RestorePlan {
  role: string;
  oid: number;
  /** The ALTER ROLE that brings LOGIN and the attributes back; null on a standby (they come by replay). */
  alter: string | null;
  hba: { file: string; content: string } | null;
  /** The reload after the HBA edit; null without one. */
  reload: string | null;
  /** What a restore cannot bring back. */
  notes: string[];
}

function bad(message: string, hint?: string): PgrevokeError {
  return new PgrevokeError(message, { exitCode: ExitCode.USAGE, hint });
}

/** One node's part of a cutoff report to undo. */
export interface ReportSection {
  /** The node's name in a report over several nodes; null in a one-node report. */
  node: string | null;
  standby: boolean;
  source: RestoreSource;
  /** From a record: the cluster it was taken on (restore refuses another one). */
  systemIdentifier?: string | null;
}

export interface ReportSections {
  /** A report over several nodes (cutoff with --target/--fleet/--pgbouncer). */
  fleet: boolean;
  /** Primaries first: a standby's LOGIN comes back by replay of its primary's restore. */
  sections: ReportSection[];
  /** Nodes of the report where the cutoff changed nothing (refused, unreachable, absent), and why. */
  untouched: { node: string; why: string }[];
  /** The write-ahead record the report names (its run's record in the state directory). */
  linkedRecord?: string | null;
}

/**
 * The sections of a cutoff report to undo: the one of a one-node report; of a report over several
 * nodes, the section of `node`, or without it every node where the cutoff ran. A standby's section
 * undoes its own HBA block only: its LOGIN comes back by replay when the primary's is restored.
 */
export function readSections(file: string, node?: string): ReportSections {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw bad(`cannot read the cutoff report ${file}: ${(err as Error).message}`, 'pass the file written by cutoff --report');
  }
  return sectionsOf(doc, file, node);
}

/** The sections of a cutoff report already read (a --report file, or the report closing a record). */
export function sectionsOf(doc: unknown, file: string, node?: string): ReportSections {
  const linked = (doc as { record?: unknown } | null)?.record;
  return { ...sectionsIn(doc, file, node), linkedRecord: typeof linked === 'string' ? linked : null };
}

function sectionsIn(doc: unknown, file: string, node?: string): ReportSections {
  const check = (r: unknown, where: string): RestoreSource => checkSource(r, where);
  const fleet = doc as { kind?: string; nodes?: { node: string; role: string | null; status?: string; report: unknown }[] };
  if (fleet.kind !== 'fleet' || !Array.isArray(fleet.nodes)) {
    if (node) throw bad(`--node applies to a report over several nodes; ${file} covers one`);
    return { fleet: false, sections: [{ node: null, standby: false, source: check(doc, file) }], untouched: [] };
  }
  const ran = fleet.nodes.filter((n) => n.report);
  let chosen = ran;
  if (node) {
    const names = ran.map((n) => `${n.node} (${n.role ?? '?'})`);
    const section = ran.find((n) => n.node === node);
    if (!section) throw bad(`${file} has no report for node ${JSON.stringify(node)}`, `one of: ${names.join(', ')}`);
    chosen = [section];
  }
  const sections = chosen.map((n) => ({ node: n.node, standby: n.role === 'standby', source: check(n.report, `${file}, node ${n.node}`) }));
  return {
    fleet: true,
    sections: [...sections.filter((x) => !x.standby), ...sections.filter((x) => x.standby)],
    untouched: node
      ? []
      : fleet.nodes
          .filter((n) => !n.report)
          .map((n) => ({ node: n.node, why: `${n.status ?? 'not run'}: the cutoff changed nothing there` })),
  };
}

/** The contain step is known not to have changed the role: skipped, or failed with nothing committed. */
function containChangedNothing(report: RestoreSource): boolean {
  const c = report.steps.find((s) => s.action === 'contain');
  return c !== undefined && (c.status === 'skipped' || (c.status === 'failed' && (c.detail ?? '').startsWith('nothing was committed')));
}

/** Pure: the statements and file change that undo the cutoff of one role (on a standby: the file change only). */
export function planRestore(
  report: RestoreSource,
  role: string,
  currentOid: number | null,
  hbaContent: string | null,
  opts: { standby?: boolean; stripped?: boolean; unbacked?: boolean } = {},
): RestorePlan {
  if (report.dryRun) throw bad('that report is of a dry run: nothing was changed, so there is nothing to restore');
  const entry = report.roles.find((r) => r.name === role);
  if (!entry)
    throw bad(
      `the report does not cover role ${JSON.stringify(role)}`,
      `it covers ${report.roles.map((r) => JSON.stringify(r.name)).join(', ')}`,
    );
  if (currentOid === null)
    throw bad(`role ${JSON.stringify(role)} no longer exists`, 'a playbook that dropped it cannot be undone by restore');
  if (currentOid !== entry.oid)
    throw bad(
      `role ${JSON.stringify(role)} now has OID ${currentOid}, not ${entry.oid} as in the report`,
      'it was dropped and recreated since: restore refuses to guess',
    );
  const b = entry.before;
  const notes: string[] = [];
  const done = (action: string) => report.steps.some((s) => s.action === action && s.status === 'done');
  if (report.steps.some((s) => s.action === 'contain' && s.sql.some((q) => q.includes("PASSWORD '*****'"))))
    notes.push('the password was rotated: the old one cannot come back; set a new one with ALTER ROLE ... PASSWORD');
  if (done('rollback_prepared')) notes.push('rolled-back prepared transactions cannot be restored');
  notes.push('terminated sessions stay terminated: clients must reconnect');
  if (done('disable_subscriptions')) notes.push('disabled subscriptions stay disabled: ALTER SUBSCRIPTION ... ENABLE after review');
  let hba: RestorePlan['hba'] = null;
  if (report.hba?.file) {
    const next = hbaContent === null ? null : withoutBlock(hbaContent, role);
    if (next !== null) hba = { file: report.hba.file, content: next };
    else notes.push(`no pgrevoke block for ${JSON.stringify(role)} in ${report.hba.file} (already removed, or edited by hand)`);
  }
  if (opts.standby)
    notes.push("standby: LOGIN, the connection limit and the attributes come back by replay once the primary's section is restored");
  // only what the cutoff changed: SUPERUSER/CREATEROLE come back only where its ALTER stripped them
  // a rerun's before-state came from an earlier record: that run's plan is where the strip shows
  const stripped = opts.stripped ?? strippedBy(report, role);
  if ((b.superuser || b.createRole) && !stripped)
    notes.push(
      opts.unbacked
        ? 'no record in the state directory backs this report, and a report alone is no evidence: restore does not grant SUPERUSER/CREATEROLE back (grant them by hand after review)'
        : 'the cutoff did not strip SUPERUSER/CREATEROLE (its plan has no NOSUPERUSER for the role): restore does not grant them',
    );
  const untouched = containChangedNothing(report);
  if (untouched && !opts.standby)
    notes.push('the cutoff never committed NOLOGIN (its contain step did not run or committed nothing): the role is left as it is');
  const alter =
    opts.standby || untouched
      ? null
      : restoreRole({
          name: role,
          canLogin: b.canLogin,
          connectionLimit: b.connectionLimit,
          superuser: b.superuser && stripped,
          createRole: b.createRole && stripped,
        });
  return { role, oid: entry.oid, alter, hba, reload: hba ? RELOAD_CONF : null, notes };
}
