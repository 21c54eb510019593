// on_reactivate: restore. Each of the identity's roles is restored from the latest record of its
// cutoff that no restore has used yet, by the restore command's own function (--yes semantics, on
// the config's targets), and only when this service's deactivation of that identity wrote it
// (own-cutoffs.ts) and found the role not cut off already: a cutoff someone else made (a
// responder's) stands, `nothing_to_restore`. A cutoff that dropped the role (the offboarding
// playbook) cannot be undone: that is recorded and reported as `not_restorable`, never retried.
import { Writable } from 'node:stream';
import { Context } from '../context.js';
import { describeError, ExitCode } from '../errors.js';
import { beforeChain, latestUnrestored, readRecords, type CutoffRecordFile } from '../record/journal.js';
import type { ServeConfig } from './config.js';
import type { OutcomeStatus } from './journal.js';

export interface RoleRestore {
  role: string;
  status: OutcomeStatus | 'retry';
  detail: string | null;
}

export interface ReactivateResult {
  /** The event's outcome: the worst of its roles'. */
  status: OutcomeStatus;
  roles: RoleRestore[];
  records: string[];
  /** Set when a role's restore failed partway: the event is tried again. */
  retry: string | null;
}

/** A record whose drop_role step ran: the role is gone, and with it what a restore could give back. */
function dropped(rec: CutoffRecordFile, role: string): boolean {
  return rec.steps.some((s) => s.step.action === 'drop_role' && s.step.status === 'done' && (s.step.role === null || s.step.role === role));
}

/** A stream that keeps what is written to it (the restore's JSON document, its notes). */
class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

async function restoreOne(role: string, cfg: ServeConfig, opts: ReactivateOptions): Promise<RoleRestore & { record?: string }> {
  const records = await readRecords();
  const found = latestUnrestored(records, { role });
  if (!found) return { role, status: 'nothing_to_restore', detail: 'no cutoff record of the role that a restore has not used yet' };
  if (!opts.own.has(found.record.file))
    return {
      role,
      status: 'nothing_to_restore',
      detail: `the role's latest cutoff (${found.record.file}) was not made by this identity's deactivation here: it stands`,
    };
  // a rerun: the deactivation found the role cut off already; its before-state is another cutoff's
  const other = beforeChain(records, found.role.beforeFrom, role).find((x) => !opts.own.has(x.record.file));
  if (other)
    return {
      role,
      status: 'nothing_to_restore',
      detail: `this identity's deactivation found the role cut off already by ${other.record.file}: that cutoff stands`,
    };
  if (dropped(found.record, role))
    return {
      role,
      status: 'not_restorable',
      detail: `the cutoff ${found.record.file} (playbook ${found.record.begin.playbook}) dropped the role: nothing can be undone; create it again by hand`,
      record: found.record.file,
    };
  const { restoreRole } = await import('../commands/restore.js');
  const out = new Collect();
  const err = new Collect();
  const ctx = new Context({ json: true, color: false }, out, err);
  let code: ExitCode;
  try {
    code = await restoreRole(role, { yes: true, dryRun: opts.dryRun, ...cfg.targetOptions }, {}, ctx);
  } catch (e) {
    return { role, status: 'retry', detail: describeError(e), record: found.record.file };
  } finally {
    for (const l of err.text.split('\n').filter(Boolean)) opts.log(l);
  }
  if (code !== ExitCode.OK)
    return { role, status: 'retry', detail: `restore exit ${code}: ${out.text.trim().slice(0, 2000)}`, record: found.record.file };
  return { role, status: opts.dryRun ? 'planned' : 'restored', detail: `from ${found.record.file}`, record: found.record.file };
}

const RANK: OutcomeStatus[] = ['restored', 'planned', 'nothing_to_restore', 'not_restorable'];

export interface ReactivateOptions {
  dryRun: boolean;
  log: (line: string) => void;
  /** The records this service's deactivations of the identity wrote (own-cutoffs.ts): the only ones restored. */
  own: ReadonlySet<string>;
}

export async function reactivate(roles: string[], cfg: ServeConfig, opts: ReactivateOptions): Promise<ReactivateResult> {
  if (cfg.onReactivate === 'ignore')
    return {
      status: 'ignored',
      roles: roles.map((role) => ({ role, status: 'ignored', detail: 'on_reactivate: ignore' })),
      records: [],
      retry: null,
    };
  const done: (RoleRestore & { record?: string })[] = [];
  // one at a time: each restore reads the records the one before may have marked
  for (const role of roles) done.push(await restoreOne(role, cfg, opts));
  const failed = done.filter((r) => r.status === 'retry');
  const settled = done.map((r) => r.status).filter((s): s is OutcomeStatus => s !== 'retry');
  const status = settled.reduce<OutcomeStatus>((worst, s) => (RANK.indexOf(s) > RANK.indexOf(worst) ? s : worst), 'restored');
  return {
    status,
    roles: done.map(({ role, status: s, detail }) => ({ role, status: s, detail })),
    records: [...new Set(done.flatMap((r) => (r.record ? [r.record] : [])))],
    retry: failed.length ? failed.map((r) => `${r.role}: ${r.detail}`).join('; ') : null,
  };
}
