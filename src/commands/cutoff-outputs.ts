// cutoff's outputs: --report, --markdown, --audit-log, then the report on stdout.
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import type { CutoffReport } from '../record/cutoff-report.js';
import type { FleetCutoffReport } from '../record/fleet-report.js';
import { writeFileSafe } from '../record/safe-write.js';

export interface OutputFlags {
  report?: string;
  markdown?: string;
  auditLog?: string;
  reason?: string;
}

/**
 * Write the files asked for, then print the report. Their paths passed checkOutputs before any
 * change; one that still fails (a full disk) makes the exit 3 (2 when nothing was changed), and the
 * report goes to stderr in full as well, so that nothing of it is lost. `text.stepsShown`: each
 * step's result line is on the terminal already, and the report on stdout leaves the steps out.
 */
export async function writeOutputs(
  ctx: Context,
  report: CutoffReport | FleetCutoffReport,
  f: OutputFlags,
  text: { stepsShown?: boolean } = {},
): Promise<ExitCode> {
  // renderers and the audit writer load after containment, off the critical path
  const [
    { appendAudit },
    { auditEntries, auditReasonOf, pgbouncerAuditEntries },
    { renderCutoff, renderMarkdown, renderFleet, renderFleetMarkdown },
  ] = await Promise.all([import('../record/audit.js'), import('../record/cutoff-audit.js'), import('../report/cutoff.js')]);
  const fleet = 'kind' in report;
  const nodeReports = fleet ? report.nodes.flatMap((n) => (n.report ? [n.report] : [])) : [report];
  // no masking over the document: secrets are kept out at their sources (src/pg/redact.ts)
  const json = JSON.stringify(report, null, 2) + '\n';
  const failed: string[] = [];
  const attempt = async (flag: string, file: string, write: () => Promise<unknown>) => {
    try {
      const notice = await write();
      if (typeof notice === 'string') ctx.note(`pgrevoke: ${notice}`);
    } catch (err) {
      failed.push(`pgrevoke: error: could not write ${flag} ${file}: ${(err as Error).message}`);
    }
  };
  if (f.report) await attempt('--report', f.report, () => writeFileSafe(f.report!, json));
  if (f.markdown)
    await attempt('--markdown', f.markdown, () => writeFileSafe(f.markdown!, fleet ? renderFleetMarkdown(report) : renderMarkdown(report)));
  if (f.auditLog && !report.dryRun)
    await attempt('--audit-log', f.auditLog, () =>
      appendAudit(f.auditLog!, [
        ...nodeReports.flatMap((r) => auditEntries(r, f.reason)),
        ...(fleet ? pgbouncerAuditEntries(report, auditReasonOf(nodeReports[0]?.playbook.reason), f.reason) : []),
      ]),
    );
  const shown = ctx.json ? '' : fleet ? renderFleet(report, ctx.c) : renderCutoff(report, ctx.c, text);
  if (ctx.json) ctx.stdout.write(json);
  else ctx.out(shown);
  if (!failed.length) return report.exitCode as ExitCode;
  if (ctx.json) ctx.stderr.write(json);
  else ctx.note(fleet ? shown : renderCutoff(report, ctx.c));
  for (const line of failed) ctx.note(`${line} (the report is above on stderr, in full)`);
  return report.dryRun || report.exitCode === ExitCode.USAGE ? ExitCode.USAGE : ExitCode.PARTIAL;
}
