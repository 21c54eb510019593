// verify: read-only, last: the same collection and evaluation as pgrevoke inspect, per role; every
// exposure it finds goes on the report's list. It runs even after a failed contain step.
import type { z as Z } from 'zod';
import { collectSessions, sessionsCheck } from '../../checks/sessions.js';
import type { RoleFacts, RoleInfo } from '../../checks/types.js';
import { ROLE_BY_OID_SQL, toRoleInfo } from '../../pg/roles.js';
import type { Verification } from '../../record/cutoff-report.js';
import { sqlError, type Run } from '../run.js';
import type { PlanContext, StepKind } from './kind.js';

const fields = (_z: typeof Z) => ({});

function planVerify(ctx: PlanContext): void {
  ctx.add({
    action: 'verify',
    database: null,
    role: null,
    sql: [],
    reason: 'read-only: the same collection and evaluation as pgrevoke inspect, per role',
  });
}

/** A role dropped by the run: only its sessions are left to look at. */
async function verifyDropped(run: Run, t: RoleInfo): Promise<Verification> {
  const sessions = await collectSessions(run.reader, t.oid);
  const findings = sessionsCheck.evaluate({ sessions } as RoleFacts);
  return { role: t.name, oid: t.oid, verdict: findings.some((f) => f.exposure) ? 'exposed' : 'contained', findings, after: null };
}

async function verifyRole(run: Run, t: RoleInfo): Promise<Verification> {
  const row = (await run.reader.query<Parameters<typeof toRoleInfo>[0]>(ROLE_BY_OID_SQL, [t.oid])).rows[0];
  if (!row) return verifyDropped(run, t);
  const info = toRoleInfo(row);
  // loaded here, after containment: the full inspect is not on the critical path
  const { collectFacts, evaluate } = await import('../../inspect/index.js');
  const facts = await collectFacts(run.deps.params, run.reader, run.state.server, info, { concurrency: 4 });
  const ev = evaluate(facts);
  return {
    role: t.name,
    oid: t.oid,
    verdict: ev.verdict,
    findings: ev.findings,
    after: { canLogin: info.canLogin, superuser: info.superuser, createRole: info.createRole, connectionLimit: info.connectionLimit },
  };
}

/** From when refusals count: the NOLOGIN commit; on a standby, when its await_replay step ended (this host's clock). */
function refusalsSince(run: Run): string | null {
  if (run.report.committedAt) return run.report.committedAt;
  const replay = run.report.steps.find((st) => st.action === 'await_replay' && st.startedAt && st.durationMs !== null);
  return replay ? new Date(Date.parse(replay.startedAt!) + replay.durationMs!).toISOString() : null;
}

/**
 * Who is still knocking: the targets' logins refused from the cutoff on, from the end of the
 * server log (bounded). Here, after containment and the verification, never before; a read that
 * fails is one line in the report, never a failed step.
 */
async function readRefusedLogins(run: Run): Promise<string | null> {
  const since = refusalsSince(run);
  if (!since) {
    run.report.refusedLoginsUnreadable = 'NOLOGIN never committed here: no cutoff time to count refusals from';
    return null;
  }
  try {
    const { collectRefusedLogins } = await import('../../inspect/failed-logins.js');
    const got = await collectRefusedLogins(
      run.reader,
      run.targets.map((t) => t.name),
      since,
    );
    Object.assign(run.report, got);
    if (!got.refusedLogins) return null;
    const n = got.refusedLogins.roles.reduce((sum, r) => sum + r.count, 0);
    const from = new Set(got.refusedLogins.roles.flatMap((r) => r.addresses.map((a) => a.address)));
    return `${n} login(s) refused since the cutoff${n ? ` from ${from.size} address(es)` : ''}`;
  } catch (err) {
    run.report.refusedLoginsUnreadable = sqlError(err);
    return null;
  }
}

async function applyVerify(run: Run): Promise<string> {
  if (run.dry) return 'would collect and evaluate each role as pgrevoke inspect does';
  const out: string[] = [];
  for (const t of run.targets) {
    const v = await verifyRole(run, t);
    run.report.verification.push(v);
    const exposures = v.findings.filter((f) => f.exposure);
    for (const f of exposures) run.expose(`${JSON.stringify(t.name)}: ${f.id}: ${f.title}`);
    out.push(`${JSON.stringify(t.name)} ${v.verdict}${exposures.length ? ` (${exposures.map((f) => f.id).join(', ')})` : ''}`);
  }
  const knocks = await readRefusedLogins(run);
  if (knocks) out.push(knocks);
  return out.join('; ');
}

export const verifyStep = {
  action: 'verify',
  fields,
  afterFailedContain: true,
  plan: planVerify,
  apply: applyVerify,
} satisfies StepKind<typeof fields>;
