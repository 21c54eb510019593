// A record as restore reads it: the report that closed it, or, for a run cut short (SIGKILL, power
// loss), a report rebuilt from what the record holds: the plan with every before-state, and the
// outcome of each step that got as far as being written.
import { sectionsOf, type ReportSections } from '../playbook/restore.js';
import type { CutoffRecordFile } from './journal.js';

function rebuilt(rec: CutoffRecordFile): unknown {
  const nodes = rec.begin.nodes.map((n) => {
    const outcomes = rec.steps.filter((s) => s.node === n.node).map((s) => s.step);
    const hbaFile = n.plan.steps.find((st) => st.action === 'hba_reject' && st.file)?.file ?? null;
    return {
      node: n.node,
      role: n.standby ? 'standby' : 'primary',
      report: {
        schemaVersion: 1,
        dryRun: false,
        roles: n.plan.roles,
        // the block may have been written before the run died: restore removes it if it is there
        hba: hbaFile ? { file: hbaFile, backup: null, lines: [] } : null,
        steps: n.plan.steps.map((st) => {
          const o = outcomes.find((x) => x.index === st.index && x.action === st.action);
          const { index, role, database, inverse } = st;
          return {
            action: st.action,
            status: o?.status ?? 'unknown',
            detail: o?.detail ?? null,
            sql: st.sql,
            index,
            role,
            database,
            inverse,
          };
        }),
      },
    };
  });
  return { kind: 'fleet', nodes };
}

/** The sections to undo from a record (the single node of a one-node run is its only section), each with its cluster's identity. */
export function recordSections(rec: CutoffRecordFile, node?: string): ReportSections {
  const out = sectionsFromRecord(rec, node);
  const idOf = (name: string | null) =>
    rec.begin.nodes.find((n) => n.node === (name ?? rec.begin.nodes[0]!.node))?.systemIdentifier ?? null;
  return { ...out, sections: out.sections.map((s) => ({ ...s, systemIdentifier: idOf(s.node) })) };
}

function sectionsFromRecord(rec: CutoffRecordFile, node?: string): ReportSections {
  if (rec.end?.report && typeof rec.end.report === 'object' && 'schemaVersion' in rec.end.report)
    return sectionsOf(rec.end.report, rec.file, node);
  const doc = rebuilt(rec) as { nodes: unknown[] };
  if (doc.nodes.length === 1 && !node) {
    const only = sectionsOf(doc, rec.file, rec.begin.nodes[0]!.node);
    return { ...only, fleet: false };
  }
  return sectionsOf(doc, rec.file, node);
}
