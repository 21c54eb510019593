// What a run cut short (interrupted, or the settle loop not finished) leaves open: said in the
// report's exposure, so that such a run is never reported as clean.
import type { CutoffReport, Suspect } from '../record/cutoff-report.js';

/**
 * What a run cut short leaves open, so that it is never reported as clean: the interruption itself,
 * a NOLOGIN that never committed, and every hidden backend not yet resolved.
 */
export function cutShortExposure(report: CutoffReport, suspects: readonly Suspect[], standby: boolean, reason: string): string[] {
  const out: string[] = [];
  const contain = report.steps.find((st) => st.action === 'contain');
  if (report.interrupted) {
    const during = report.steps.find((st) => st.status === 'failed' && st.detail?.startsWith('interrupted'));
    const notRun = [...new Set(report.steps.filter((st) => st.status === 'skipped' && st.detail === 'interrupted').map((st) => st.action))];
    out.push(
      `the run was interrupted (${reason})${during ? ` during ${during.action}` : ''}${notRun.length ? `; not run: ${notRun.join(', ')}` : ''}`,
    );
  }
  if (!standby && contain && contain.status !== 'done' && report.committedAt === null)
    out.push('NOLOGIN was not committed: the role can still log in, and sessions it opens meanwhile are not ended');
  const settle = report.steps.find((st) => st.action === 'settle');
  const cutShort = settle !== undefined && settle.status !== 'done' && settle.skip === null;
  if (cutShort && report.committedAt !== null)
    out.push(
      `NOLOGIN committed, but the settle loop did not finish (${settle.detail ?? settle.status}): sessions of the role may still be running`,
    );
  if (report.interrupted || cutShort)
    for (const sp of suspects)
      if (sp.resolution === 'open' || sp.resolution === 'unresolved')
        out.push(
          `hidden backend ${sp.pid} (role unknown) was still unresolved when the run ${report.interrupted ? 'was interrupted' : 'stopped settling'}: it may have passed the login check and can run as the role`,
        );
  return out;
}
