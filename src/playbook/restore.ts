// restore: undo what a cutoff changed, for a false alarm. Each step kind says what undoing it takes
// (its inverse, src/playbook/steps/); the SQL is rebuilt from the report's recorded attributes by
// the same builders (never taken as text from the file: a report is data).
import { readFileSync } from 'node:fs';
import { ExitCode, PgrevokeError } from '../errors.js';
import { checkSource, type RestoreSource } from './restore-source.js';
import { strippedBy } from './strip-evidence.js';
import { RELOAD_CONF } from './sql.js';
import type { RestoreContext, RestorePart, StepKind } from './steps/kind.js';
import { STEP_KINDS } from './steps/index.js';

export type { RestoreSource };

export interface RestorePlan {
  role: string;
  oid: number;
  /** The ALTER ROLE that brings LOGIN and the attributes back; null on a standby (they come by replay). */
  alter: string | null;
  hba: { file: string; content: string } | null;
  /** The reload after the HBA edit; null without one. */
  reload: string | null;
  /** The playbook's own undo statements (`sql` steps' inverse), each in its database. */
  statements: NonNullable<RestorePart['statements']>;
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
  return sectionsOf(readReport(file), file, node);
}

/** A report file's document, parsed (not yet checked). */
export function readReport(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw bad(`cannot read the cutoff report ${file}: ${(err as Error).message}`, 'pass the file written by cutoff --report');
  }
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
  // only what the cutoff changed: SUPERUSER/CREATEROLE come back only where its ALTER stripped them;
  // a rerun's before-state came from an earlier record: that run's plan is where the strip shows
  const ctx: RestoreContext = {
    report,
    role,
    entry,
    hbaContent,
    standby: Boolean(opts.standby),
    stripped: opts.stripped ?? strippedBy(report, role),
    unbacked: Boolean(opts.unbacked),
  };
  const plan: RestorePlan = { role, oid: entry.oid, alter: null, hba: null, reload: null, statements: [], notes: [] };
  for (const kind of Object.values(STEP_KINDS) as StepKind[]) {
    const part = kind.inverse?.(ctx);
    if (!part) continue;
    if (part.alter !== undefined) plan.alter = part.alter;
    if (part.hba) plan.hba = part.hba;
    plan.statements.push(...(part.statements ?? []));
    plan.notes.push(...(part.notes ?? []));
  }
  plan.reload = plan.hba ? RELOAD_CONF : null;
  return plan;
}
