// verify: is each revoked role contained? Reuses inspect's collection and evaluation; adds only
// the per-check verdicts a CI gate needs (login, sessions, runs-as, and with --strict, ownership).
import { hbaLoginVerdict } from '../checks/hba-login.js';
import { findRole } from '../pg/roles.js';
import { ACTIVITY_COLUMNS, toSession, type ActivityRow } from '../checks/sessions.js';
import type { Finding, PersistenceKind, Queryable, RoleFacts, ServerFacts, SessionRow } from '../checks/types.js';
import { collectFacts, evaluate } from '../inspect/index.js';
import type { ConnParams } from '../pg/conninfo.js';
import { collectServer } from '../pg/server.js';
import { connect } from '../pg/connect.js';
import { redact } from '../pg/redact.js';

export const VERIFY_SCHEMA_VERSION = 1;

export type CheckStatus = 'pass' | 'fail' | 'error';
export type RoleStatus = 'contained' | 'exposed' | 'unknown';
export type VerifyCheckName = 'login' | 'sessions' | 'runs_as' | 'owned_objects' | 'memberships' | 'probe';

export interface VerifyCheck {
  name: VerifyCheckName;
  status: CheckStatus;
  message: string;
  remediation: string | null;
}

export interface RoleVerification {
  role: string;
  exists: boolean;
  oid: number | null;
  status: RoleStatus;
  checks: VerifyCheck[];
}

export interface VerifyReport {
  schemaVersion: number;
  server: ServerFacts;
  strict: boolean;
  status: RoleStatus;
  roles: RoleVerification[];
}

export interface VerifyOptions {
  strict?: boolean;
  /** Prove rejection with a real login as the role, using this password. */
  probePassword?: string;
  concurrency?: number;
}

/** Sessions whose role no longer exists: NULL usename, an OID missing from pg_roles. */
const ORPHAN_SESSIONS_SQL = `SELECT ${ACTIVITY_COLUMNS} FROM pg_stat_activity a
WHERE a.usesysid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = a.usesysid) AND a.pid <> pg_backend_pid()`;

const RUNS_AS: PersistenceKind[] = ['subscription', 'replication_slot', 'cron_job'];

function check(name: VerifyCheckName, status: CheckStatus, message: string, remediation: string | null = null): VerifyCheck {
  return { name, status, message, remediation };
}

/** Contained only when NOLOGIN or provably kept out by HBA; an expired role that HBA may let in without a password is "could not tell". */
function loginCheck(facts: RoleFacts, findings: Finding[]): VerifyCheck {
  const r = facts.role;
  if (!r.canLogin) return check('login', 'pass', 'NOLOGIN');
  const hba = hbaLoginVerdict(facts);
  if (hba.kind === 'blocked')
    return r.expired
      ? check('login', 'pass', `expired (VALID UNTIL ${r.validUntil}) and pg_hba.conf admits it only through password methods`)
      : check('login', 'pass', `LOGIN, but ${hba.reason}`);
  if (r.expired && hba.kind === 'unknown')
    return check(
      'login',
      'error',
      `expired (VALID UNTIL ${r.validUntil}), but trust/peer/cert paths ignore expiry and cannot be ruled out: ${hba.reason}`,
      'run verify as a superuser once pg_hba.conf is reloaded and error-free, or set the role NOLOGIN',
    );
  const f = findings.find((x) => x.id === 'role.can_login');
  return check('login', 'fail', f?.detail ?? 'the role can log in', `pgrevoke cutoff ${JSON.stringify(r.name)}`);
}

/** Pure: the verdict per check from inspect's facts. */
export function judge(facts: RoleFacts, strict: boolean): VerifyCheck[] {
  const r = facts.role;
  const quoted = JSON.stringify(r.name);
  const out: VerifyCheck[] = [];
  const findings = evaluate(facts).findings;

  // login
  out.push(loginCheck(facts, findings));

  // sessions and prepared transactions
  const problems: string[] = [];
  if (facts.sessions.length) problems.push(`${facts.sessions.length} session(s): pids ${facts.sessions.map((s) => s.pid).join(', ')}`);
  if (facts.preparedTransactions.length)
    problems.push(
      `${facts.preparedTransactions.length} prepared transaction(s): ${facts.preparedTransactions.map((p) => `'${p.gid}' in ${p.database}`).join(', ')}`,
    );
  out.push(
    problems.length
      ? check(
          'sessions',
          'fail',
          problems.join('; '),
          `pgrevoke cutoff ${quoted} terminates the sessions and rolls back the prepared transactions`,
        )
      : check('sessions', 'pass', 'no sessions, no prepared transactions'),
  );

  // nothing runs as it
  const active = facts.persistence.items.filter((i) => RUNS_AS.includes(i.kind) && i.active);
  const walsenders = facts.sessions.filter((s) => s.backendType === 'walsender');
  if (facts.persistence.errors.length)
    out.push(
      check(
        'runs_as',
        'error',
        `could not scan ${facts.persistence.errors.map((e) => `${e.database} (${e.sqlstate ?? 'error'})`).join(', ')}`,
        'run verify as a role that can connect to every database',
      ),
    );
  else if (active.length || walsenders.length)
    out.push(
      check(
        'runs_as',
        'fail',
        [
          ...active.map((i) => `${i.kind.replace('_', ' ')} ${i.name}${i.database ? ` in ${i.database}` : ''}`),
          ...walsenders.map((w) => `walsender pid ${w.pid}`),
        ].join('; '),
        'ALTER SUBSCRIPTION ... DISABLE, terminate walsenders, unschedule cron jobs (pgrevoke cutoff disables subscriptions)',
      ),
    );
  else out.push(check('runs_as', 'pass', 'no enabled subscriptions, active slots, walsenders or active cron jobs'));

  if (strict) {
    const owned = facts.persistence.items.filter((i) => i.kind !== 'granted_roles' && !RUNS_AS.includes(i.kind));
    out.push(
      owned.length
        ? check(
            'owned_objects',
            'fail',
            owned.map((i) => `${i.kind.replace('_', ' ')}: ${i.name}${i.database ? ` in ${i.database}` : ''}`).join('; '),
            `REASSIGN OWNED BY ${quoted} ... and DROP OWNED in each database (pgrevoke cutoff --playbook offboarding)`,
          )
        : check('owned_objects', 'pass', 'owns nothing'),
    );
    const m = facts.memberships;
    const list = [
      ...m.memberOf.filter((x) => x.depth === 1).map((x) => `member of ${x.role}`),
      ...m.members.filter((x) => x.depth === 1).map((x) => `${x.member} is a member`),
    ];
    out.push(
      list.length
        ? check('memberships', 'fail', list.join('; '), `REVOKE the memberships, or DROP ROLE ${quoted}`)
        : check('memberships', 'pass', 'no memberships'),
    );
  }
  return out;
}

function statusOf(checks: VerifyCheck[]): RoleStatus {
  if (checks.some((c) => c.status === 'fail')) return 'exposed';
  if (checks.some((c) => c.status === 'error')) return 'unknown';
  return 'contained';
}

/** Try to log in as the role: a refusal is the proof; a login is a failure. */
export async function probe(params: ConnParams, role: string, password: string): Promise<VerifyCheck> {
  try {
    const c = await connect({ ...params, user: role, password, applicationName: 'pgrevoke-probe' });
    await c.end().catch(() => undefined);
    return check(
      'probe',
      'fail',
      `logged in as ${JSON.stringify(role)} with the supplied credential`,
      `pgrevoke cutoff ${JSON.stringify(role)}`,
    );
  } catch (err) {
    const e = err as { sqlstate?: string; message?: string };
    const refused = e.sqlstate === '28000' || e.sqlstate === '28P01';
    return check(
      'probe',
      refused ? 'pass' : 'error',
      `${refused ? 'refused' : 'could not probe'}: ${redact(e.message ?? String(err))}${e.sqlstate ? ` [SQLSTATE ${e.sqlstate}]` : ''}`,
      refused ? null : 'check that the server is reachable from here as the role would reach it',
    );
  }
}

export async function verifyRoles(params: ConnParams, q: Queryable, names: string[], opts: VerifyOptions = {}): Promise<VerifyReport> {
  const server = await collectServer(q);
  const roles: RoleVerification[] = [];
  let orphans: SessionRow[] | undefined;
  for (const name of names) {
    const role = await findRole(q, name);
    let checks: VerifyCheck[];
    if (!role) {
      orphans ??= (await q.query<ActivityRow>(ORPHAN_SESSIONS_SQL)).rows.map(toSession);
      checks = [
        check('login', 'pass', 'the role does not exist'),
        orphans.length
          ? check(
              'sessions',
              'fail',
              `sessions of dropped role(s) remain: ${orphans.map((s) => `pid ${s.pid} (usesysid ${s.userOid})`).join(', ')}`,
              'SELECT pg_terminate_backend(pid) for each (pgrevoke kill PID)',
            )
          : check('sessions', 'pass', 'no sessions of dropped roles remain'),
      ];
    } else {
      const facts = await collectFacts(params, q, server, role, { concurrency: opts.concurrency });
      checks = judge(facts, Boolean(opts.strict));
    }
    if (opts.probePassword !== undefined) checks.push(await probe(params, name, opts.probePassword));
    roles.push({ role: name, exists: Boolean(role), oid: role?.oid ?? null, status: statusOf(checks), checks });
  }
  const status: RoleStatus = roles.some((r) => r.status === 'exposed')
    ? 'exposed'
    : roles.some((r) => r.status === 'unknown')
      ? 'unknown'
      : 'contained';
  return { schemaVersion: VERIFY_SCHEMA_VERSION, server, strict: Boolean(opts.strict), status, roles };
}
