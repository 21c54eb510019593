// settle: the loop that closes the post-authentication race. Every interval: terminate by OID
// again, re-scan hidden backends, re-check LOGIN; until no backend twice in a row and every hidden
// suspect is resolved, or the timeout. NOLOGIN switched back on from a live session is re-applied.
import type { z as Z } from 'zod';
import type { RoleInfo } from '../../checks/types.js';
import type { ReportStep, SettleReport, Suspect } from '../../record/cutoff-report.js';
import { clearBlockers } from '../blockers.js';
import { adoptCreated, worthRetry } from '../containment.js';
import type { ResultSet } from '../executor.js';
import { num, type Run } from '../run.js';
import { reapply, settleRound, terminatePids } from '../sql.js';
import { Interrupted, mustFollow, type PlanContext, type StepKind } from './kind.js';

type Row = Record<string, unknown>;

const fields = (z: typeof Z) => ({
  timeout_s: z.number().positive().max(3600).default(10),
  hidden_grace_ms: z.number().int().nonnegative().max(3_600_000).default(250),
  interval_ms: z.number().int().positive().max(10_000).default(20),
});

function planSettle(ctx: PlanContext): void {
  const { settle } = ctx.options;
  ctx.add({
    action: 'settle',
    database: null,
    role: null,
    sql: [
      settleRound(
        ctx.targets.map((t) => t.oid),
        ctx.state.server.major,
      ),
    ],
    reason: `every ${settle.intervalMs} ms: terminate by OID again, re-scan hidden backends, re-check LOGIN; until no backend twice in a row and every hidden suspect is resolved (hidden grace ${settle.hiddenGraceMs} ms, timeout ${settle.timeoutS} s)`,
  });
}

/** A settle statement; blocked by a lock, the blockers are dealt with and null says "go round again". */
async function settleRun(run: Run, step: ReportStep, stmt: string, deadline: number): Promise<ResultSet[] | null> {
  try {
    return await run.exec.run(step, stmt);
  } catch (err) {
    if (!worthRetry(run, err, deadline)) throw err;
    await clearBlockers(run, step);
    return null;
  }
}

/** Suspects no longer hidden are resolved; those hidden past the grace period are returned to terminate. */
function judgeSuspects(run: Run, visible: Set<number>, hiddenNow: Set<number>): number[] {
  const { hiddenGraceMs } = run.plan.options.settle;
  const now = Date.now();
  const kill: number[] = [];
  for (const sp of run.suspects.values()) {
    if (sp.resolution !== 'open') continue;
    if (!hiddenNow.has(sp.pid) && !visible.has(sp.pid)) {
      sp.resolution = sp.sent ? 'terminated' : 'left';
      sp.detail = sp.sent
        ? `terminated while still hidden, ${now - sp.since} ms after it was first seen`
        : `no longer hidden after ${now - sp.since} ms: it was refused or left, or it is another role's session`;
    } else if (hiddenNow.has(sp.pid) && !sp.sent && now - sp.since >= hiddenGraceMs) {
      if (run.deps.operator.superuser) kill.push(sp.pid);
      else
        sp.detail = `still hidden after the ${hiddenGraceMs} ms grace period; only a superuser can terminate a backend that has no role yet`;
    }
  }
  return kill;
}

/** Hidden backends past their grace period, terminated by pid (only while still without a role of another). */
async function killHidden(run: Run, step: ReportStep, kill: number[], deadline: number): Promise<void> {
  const rows = (await settleRun(run, step, terminatePids(kill, run.oids), deadline))?.at(-1)?.rows ?? [];
  const infos = new Map([...run.suspects.values()].map((x) => [x.pid, x.info]));
  for (const r of rows) {
    const sp = run.suspects.get(num(r.pid));
    if (sp && r.terminated === true) sp.sent = true;
  }
  run.recordTerminated(
    rows.filter((r) => r.terminated === true),
    true,
    infos,
  );
}

/** Targets the round saw able to log in again (or with privileges back); dropped ones are noted. */
function flippedRoles(run: Run, roles: Row[], settle: SettleReport): RoleInfo[] {
  const flipped: RoleInfo[] = [];
  for (const t of run.targets) {
    const row = roles.find((r) => num(r.oid) === t.oid);
    if (!row) {
      if (!settle.dropped.includes(t.name)) settle.dropped.push(t.name);
      continue;
    }
    const strip = run.plan.options.stripPrivileges && (t.superuser || t.createRole);
    if (row.rolcanlogin === true || num(row.rolconnlimit) !== 0 || (strip && (row.rolsuper === true || row.rolcreaterole === true)))
      flipped.push({ ...t, name: String(row.rolname), superuser: t.superuser, createRole: t.createRole });
  }
  return flipped;
}

/** LOGIN back on: re-applied on a primary; a standby waits for the primary's to be replayed. */
async function reapplyFlipped(run: Run, step: ReportStep, flipped: RoleInfo[], settle: SettleReport, deadline: number): Promise<void> {
  if (run.standby) {
    // read-only here: the primary re-applies, and the loop goes on until that is replayed
    for (const f of flipped.filter((x) => !settle.reapplied.some((r) => r.role === x.name)))
      settle.reapplied.push({
        at: run.clock().toISOString(),
        role: f.name,
        detail: 'standby: the role can still log in here (NOLOGIN not replayed yet, or switched back on at the primary)',
      });
    return;
  }
  const out = await settleRun(run, step, reapply(flipped, run.major, { strip: run.plan.options.stripPrivileges }), deadline);
  run.addSuspects(out?.at(-1)?.rows ?? []);
  for (const f of flipped)
    settle.reapplied.push({
      at: run.clock().toISOString(),
      role: f.name,
      detail:
        'LOGIN (or SUPERUSER/CREATEROLE, or the connection limit) was switched back on during the cutoff, presumably from a live session of the role: NOLOGIN applied again',
    });
}

/** One round; true when the loop is done. `stillLogin` is set to the roles a standby still sees able to log in. */
async function round(run: Run, step: ReportStep, settle: SettleReport, deadline: number, stillLogin: string[]): Promise<boolean | null> {
  const res = await settleRun(run, step, settleRound(run.oids, run.major), deadline);
  if (!res) return null;
  settle.iterations++;
  // a dry run returns no results
  const [term, hidden, roles] = [-3, -2, -1].map((i) => res.at(i)?.rows ?? []) as [Row[], Row[], Row[]];
  run.recordTerminated(term, false);
  const kill = judgeSuspects(run, new Set(term.map((r) => num(r.pid))), new Set(hidden.map((r) => num(r.pid))));
  if (kill.length && !run.dry) await killHidden(run, step, kill, deadline);
  let flipped: RoleInfo[] = [];
  // without a NOLOGIN on the way, a standby's LOGIN is no reason to keep sweeping: HBA comes next
  if (!run.dry && !(run.standby && run.noNologin)) {
    flipped = flippedRoles(run, roles, settle);
    stillLogin.splice(0, stillLogin.length, ...(run.standby ? flipped.map((f) => f.name) : []));
    if (flipped.length) await reapplyFlipped(run, step, flipped, settle, deadline);
  }
  run.cleanScans = term.length === 0 && flipped.length === 0 ? run.cleanScans + 1 : 0;
  const open = [...run.suspects.values()].filter((x) => x.resolution === 'open');
  if (run.cleanScans >= 2 && open.length === 0) {
    // quiet: one last look for roles a target made before its sessions ended
    if (!(await adoptCreated(run, step))) return true;
    run.cleanScans = 0;
  }
  if (Date.now() < deadline) return false;
  settle.timedOut = true;
  for (const x of open) {
    x.resolution = 'unresolved';
    x.detail = x.detail ?? `still hidden when the ${run.plan.options.settle.timeoutS} s settle timeout ran out`;
  }
  return true;
}

/** What a timed-out loop leaves open, and the summary line. */
function settled(run: Run, settle: SettleReport, stillLogin: string[]): string {
  const { timeoutS } = run.plan.options.settle;
  const unresolved = settle.suspects.filter((x) => x.resolution === 'unresolved');
  if (settle.timedOut) {
    for (const r of stillLogin)
      run.expose(
        `${JSON.stringify(r)} can still log in on this standby: NOLOGIN had not been replayed here when the ${timeoutS} s settle timeout ran out`,
      );
    if (run.cleanScans < 2 && stillLogin.length === 0)
      run.expose(`backends of the role were still seen when the ${timeoutS} s settle timeout ran out`);
    for (const u of unresolved) run.expose(`hidden backend ${u.pid} (role unknown) was not resolved: ${u.detail}`);
  }
  for (const r of settle.reapplied) run.warn(`${JSON.stringify(r.role)}: ${r.detail}`);
  const sum = (k: Suspect['resolution']) => settle.suspects.filter((x) => x.resolution === k).length;
  return (
    `${settle.iterations} round(s) in ${settle.durationMs} ms; ${run.report.terminated.length} backend(s) terminated in all; ` +
    `suspects: ${settle.suspects.length} (${sum('left')} left, ${sum('terminated')} terminated while hidden, ${unresolved.length} unresolved)` +
    (settle.reapplied.length
      ? run.standby
        ? '; waited for NOLOGIN to be replayed here'
        : `; NOLOGIN re-applied ${settle.reapplied.length} time(s)`
      : '') +
    (settle.timedOut ? '; TIMED OUT' : '')
  );
}

async function applySettle(run: Run, step: ReportStep): Promise<string> {
  const t0 = Date.now();
  const deadline = t0 + run.plan.options.settle.timeoutS * 1000;
  const settle: SettleReport = { iterations: 0, durationMs: 0, timedOut: false, suspects: [], reapplied: [], dropped: [] };
  run.report.settle = settle;
  const stillLogin: string[] = []; // standby: roles the last round still saw able to log in
  try {
    for (;;) {
      if (run.interrupt.interrupted) throw new Interrupted();
      const done = await round(run, step, settle, deadline, stillLogin);
      if (done) break;
      if (done === false) await run.interrupt.sleep(run.plan.options.settle.intervalMs);
    }
  } finally {
    settle.durationMs = Date.now() - t0;
    settle.suspects = [...run.suspects.values()].map(({ pid, via, firstSeen, resolution, detail }) => ({
      pid,
      via,
      firstSeen,
      resolution,
      detail,
    }));
  }
  if (run.dry) return 'would repeat until no backend of the role is seen twice in a row and every hidden suspect is resolved';
  return settled(run, settle, stillLogin);
}

export const settleStep = {
  action: 'settle',
  fields,
  order: mustFollow('contain'),
  options: (step, input) => ({
    settle: {
      timeoutS: input.settleTimeoutS ?? step.timeout_s,
      hiddenGraceMs: input.hiddenGraceMs ?? step.hidden_grace_ms,
      intervalMs: step.interval_ms,
    },
  }),
  plan: planSettle,
  apply: applySettle,
} satisfies StepKind<typeof fields>;
