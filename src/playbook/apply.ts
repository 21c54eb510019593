// apply: the only writer. Walks a plan through an Executor (real or dry-run), step by step, and
// returns the report. Containment first (one round trip), then the settle loop that closes the
// post-authentication race, then what outlives sessions, then verification.
import { readFile } from 'node:fs/promises';
import { collectHiddenBackends } from '../checks/hidden-backends.js';
import { isBlockingHbaError } from '../hba/file-errors.js';
import { collectBlocking, collectLocks } from '../checks/locks.js';
import { collectPrepared } from '../checks/prepared-xacts.js';
import { ROLE_BY_OID_SQL, toRoleInfo } from '../pg/roles.js';
import { collectSessions, sessionsCheck } from '../checks/sessions.js';
import type {
  BlockingRow,
  Finding,
  HiddenBackend,
  LockRow,
  PreparedXact,
  Queryable,
  RoleFacts,
  RoleInfo,
  SessionRow,
} from '../checks/types.js';
import type { Verdict } from '../inspect/index.js';
import type { ConnParams } from '../pg/conninfo.js';
import { ident, literal } from '../pg/quote.js';
import { queryText, redact } from '../pg/redact.js';
import type { Executor, ResultSet } from './executor.js';
import type { Statement } from './sql.js';
import { Interrupt } from './interrupt.js';
import { confirmEdit, withBlocks } from './hba-file.js';
import { withHbaLock, type ServerLocker } from './hba-lock.js';
import {
  adoptAdministered,
  cannotRollBack,
  HBA_ERRORS_SQL,
  HBA_OURS_SQL,
  hbaNote,
  OWNED_DATABASES_SQL,
  SUBSCRIPTIONS_SQL,
  type Plan,
  type PlanRole,
  type PlanState,
  type PlanStep,
} from './plan.js';
import {
  BLOCKER_NAMES,
  blockers,
  COMMITTED_AT,
  preparedBlockers,
  contain,
  containStandby,
  disableSubscription,
  dropOwned,
  LOCKS_REMAINING,
  reapply,
  reassignOwned,
  RELOAD_CONF,
  RETRY_SQLSTATES,
  REPLAY_POSITION,
  rollbackPrepared,
  roleState,
  settleRound,
  STILL_BLOCKED,
  terminate,
  terminateListed,
  terminatePids,
} from './sql.js';

export { Interrupt };

export const CUTOFF_SCHEMA_VERSION = 1;

export type StepStatus = 'planned' | 'done' | 'skipped' | 'failed';

export interface ReportStep extends PlanStep {
  status: StepStatus;
  /** Distinct statements the executor ran for this step, in order (a dry run: would have run). */
  executed: string[];
  startedAt: string | null;
  durationMs: number | null;
  detail: string | null;
}

export interface TerminatedSession {
  /** The node it ran on (a fleet report holds several). */
  node: string;
  pid: number;
  /** The target it ran as (null for a hidden backend: SQL cannot tell). */
  role: string | null;
  user: string | null;
  database: string | null;
  client: string | null;
  application: string | null;
  backendType: string | null;
  state: string | null;
  backendStart: string | null;
  xactStart: string | null;
  query: string | null;
  /** Terminated while still hidden (post-authentication window), by pid. */
  hidden: boolean;
  /** pg_terminate_backend answered true (false: it had already gone). */
  signalled: boolean;
  at: string;
}

export interface Suspect {
  pid: number;
  via: string;
  firstSeen: string;
  resolution: 'open' | 'left' | 'terminated' | 'unresolved';
  detail: string | null;
}

export interface SettleReport {
  iterations: number;
  durationMs: number;
  timedOut: boolean;
  /** Hidden right after the NOLOGIN commit (H0), plus those after a re-applied NOLOGIN. */
  suspects: Suspect[];
  /** Someone switched LOGIN (or SUPERUSER) back on during the loop: NOLOGIN was applied again. */
  reapplied: { at: string; role: string; detail: string }[];
  /** Roles that vanished (dropped) while the loop ran. */
  dropped: string[];
}

/** A session holding a lock the containment statement waited for (found after a lock timeout). */
export interface Blocker {
  /** The backend (null: a prepared transaction, see gid). */
  pid: number | null;
  gid: string | null;
  /** The target it ran as (null: another role's session, left alone). */
  role: string | null;
  user: string | null;
  userOid: number | null;
  mode: string;
  /** The locked relation (pg_authid, ...). */
  relation: string;
  application: string | null;
  query: string | null;
  terminated: boolean;
  at: string;
}

/** The containment statement's attempts: more than one when a lock held it up. */
export interface ContainReport {
  attempts: number;
  blockers: Blocker[];
}

export interface Snapshot {
  takenAt: string;
  sessions: SessionRow[];
  hiddenBackends: HiddenBackend[];
  locks: (LockRow & { role: string })[];
  blocking: (BlockingRow & { role: string })[];
  preparedTransactions: (PreparedXact & { role: string })[];
}

export interface LocksReport {
  remaining: Record<string, unknown>[];
  released: { pid: number; user: string | null; blockedBy: string }[];
  stillBlocked: { pid: number; user: string | null; blockedBy: number[] }[];
}

/** A standby's wait for the primary's NOLOGIN commit to be replayed. */
export interface ReplayReport {
  /** The primary's WAL insert position right after the commit (null: the primary never committed). */
  target: string | null;
  replayed: string | null;
  /** Bytes still to replay at the last look (0 once caught up). */
  lagBytes: number | null;
  caughtUp: boolean;
  waitedMs: number;
}

export interface Verification {
  role: string;
  oid: number;
  verdict: Verdict;
  findings: Finding[];
  /** The role's attributes after the cutoff (null: it no longer exists). */
  after: Pick<RoleInfo, 'canLogin' | 'superuser' | 'createRole' | 'connectionLimit'> | null;
}

export interface CutoffReport {
  schemaVersion: typeof CUTOFF_SCHEMA_VERSION;
  roles: PlanRole[];
  playbook: Plan['playbook'];
  dryRun: boolean;
  node: string;
  server: Plan['server'];
  operator: { user: string; osUser: string; host: string; superuser: boolean };
  reasonText: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** Server time right after NOLOGIN committed: every backend forked later is refused. */
  committedAt: string | null;
  /** The primary's WAL insert position right after that commit (what standbys wait to replay). */
  commitLsn: string | null;
  /** Standby only: the wait for the primary's commit to be replayed here. */
  replay: ReplayReport | null;
  contain: ContainReport | null;
  steps: ReportStep[];
  snapshot: Snapshot | null;
  terminated: TerminatedSession[];
  settle: SettleReport | null;
  locks: LocksReport | null;
  /** `file` as named (--hba-file or hba_file); `written`: its real path, the file edited when it is a link. */
  hba: { file: string; written: string; backup: string | null; lines: string[] } | null;
  verification: Verification[];
  /** Plain sentences: what access may remain. Empty when contained and verified. */
  exposure: string[];
  warnings: string[];
  interrupted: boolean;
  exitCode: number;
  /** The write-ahead record of this run in the state directory (restore --from finds it through this). */
  record?: string | null;
}

class Interrupted extends Error {}
class StepSkipped extends Error {}

export interface ApplyDeps {
  plan: Plan;
  state: PlanState;
  exec: Executor;
  /** Read-only queries on the main connection (collection, verification): both modes run these. */
  reader: Queryable;
  params: ConnParams;
  operator: { user: string; osUser: string; host: string; superuser: boolean };
  reasonText?: string | null;
  interrupt?: Interrupt;
  /** Standby: resolves to the primary's commit position (null: the primary did not commit). */
  replayTarget?: Promise<string | null>;
  /** Primary: called once NOLOGIN has committed, with the position standbys must replay. */
  onCommitted?: (lsn: string | null) => void;
  /** Progress (text mode prints it on stderr). */
  onStep?: (step: ReportStep, phase: 'start' | 'end') => void;
  now?: () => Date;
  /** The server's pg_hba.conf lock (default: a session of its own in template1); tests without a server pass a stand-in. */
  hbaServerLock?: ServerLocker;
}

function sqlError(err: unknown): string {
  const e = err as { message?: string; code?: string; detail?: string; hint?: string };
  const parts = [redact(e.message ?? String(err))];
  if (e.code && /^[0-9A-Z]{5}$/.test(e.code)) parts.push(`[SQLSTATE ${e.code}]`);
  if (e.detail) parts.push(`detail: ${redact(e.detail)}`);
  return parts.join(' ');
}

/** A failure the containment statements are tried again after (a lock wait ran out, a concurrent update). */
function retryable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (!e.code || !RETRY_SQLSTATES.has(e.code)) return false;
  return e.code !== 'XX000' || /tuple concurrently (updated|deleted)/.test(e.message ?? '');
}

type Row = Record<string, unknown>;

function n(v: unknown): number {
  return Number(v);
}

function s(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

export async function apply(deps: ApplyDeps): Promise<CutoffReport> {
  const { plan, state, exec, reader } = deps;
  const clock = deps.now ?? (() => new Date());
  const interrupt = deps.interrupt ?? new Interrupt();
  const dry = exec.dryRun;
  const major = state.server.major;
  const standby = state.server.inRecovery;
  const targets = state.targets;
  const oids = targets.map((t) => t.oid);
  const nameByOid = new Map(targets.map((t) => [t.oid, t.name]));

  const report: CutoffReport = {
    schemaVersion: CUTOFF_SCHEMA_VERSION,
    roles: [...plan.roles],
    playbook: plan.playbook,
    dryRun: dry,
    node: plan.node,
    server: plan.server,
    operator: deps.operator,
    reasonText: deps.reasonText ?? null,
    startedAt: clock().toISOString(),
    finishedAt: null,
    committedAt: null,
    commitLsn: null,
    replay: null,
    contain: null,
    steps: plan.steps.map((st) => ({ ...st, status: 'planned', executed: [], startedAt: null, durationMs: null, detail: null })),
    snapshot: null,
    terminated: [],
    settle: null,
    locks: null,
    hba: null,
    verification: [],
    exposure: [...plan.exposure],
    warnings: [...plan.warnings],
    interrupted: false,
    exitCode: 0,
  };

  let changed = false;
  const seen = new Set<number>();
  const recordTerminated = (rows: Record<string, unknown>[], hidden: boolean, hiddenInfo?: Map<number, HiddenBackend>) => {
    let added = 0;
    for (const r of rows) {
      const pid = n(r.pid);
      if (seen.has(pid)) continue;
      seen.add(pid);
      added++;
      const info = hiddenInfo?.get(pid);
      report.terminated.push({
        node: plan.node,
        pid,
        role: r.usesysid === undefined || r.usesysid === null ? null : (nameByOid.get(n(r.usesysid)) ?? null),
        user: s(r.usename),
        database: s(r.datname),
        client: s(r.client_addr) ?? info?.clientAddr ?? null,
        application: s(r.application_name),
        backendType: s(r.backend_type),
        state: s(r.state),
        backendStart: s(r.backend_start) ?? info?.backendStart ?? null,
        xactStart: s(r.xact_start),
        query: queryText(s(r.query)),
        hidden,
        signalled: r.terminated === true,
        at: clock().toISOString(),
      });
    }
    return added;
  };

  // settle-loop state, started by the contain step
  const suspects = new Map<number, Suspect & { since: number; sent: boolean; info: HiddenBackend }>();
  let cleanScans = 0;
  const addSuspects = (rows: Record<string, unknown>[]) => {
    const t = Date.now();
    for (const r of rows) {
      const pid = n(r.pid);
      if (suspects.has(pid)) continue;
      const info: HiddenBackend = {
        pid,
        via: r.via === 'starting' ? 'starting' : 'virtualxid',
        backendStart: s(r.backend_start),
        clientAddr: s(r.client_addr),
      };
      suspects.set(pid, {
        pid,
        via: info.via,
        firstSeen: new Date(t).toISOString(),
        resolution: 'open',
        detail: null,
        since: t,
        sent: false,
        info,
      });
    }
  };

  // ---- step handlers: each returns the detail; throws to fail, StepSkipped to skip ----

  const snapshot = async (): Promise<string> => {
    const snap: Snapshot = {
      takenAt: clock().toISOString(),
      sessions: [],
      hiddenBackends: [],
      locks: [],
      blocking: [],
      preparedTransactions: [],
    };
    try {
      await collectSnapshot(snap);
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03') throw err;
      throw new StepSkipped(
        `blocked by a lock on a system catalog (${sqlError(err)}): the containment statement's terminate rows carry the sessions' forensic columns instead`,
      );
    }
    report.snapshot = snap;
    return `${snap.sessions.length} session(s), ${snap.hiddenBackends.length} hidden backend(s), ${snap.locks.length} lock(s), ${snap.blocking.length} blocked session(s), ${snap.preparedTransactions.length} prepared transaction(s)`;
  };

  const collectSnapshot = async (snap: Snapshot): Promise<void> => {
    for (const t of targets) {
      snap.sessions.push(...(await collectSessions(reader, t.oid)));
      snap.locks.push(...(await collectLocks(reader, t.oid, t.name)).map((l) => ({ ...l, role: t.name })));
      snap.blocking.push(...(await collectBlocking(reader, t.oid, t.name)).map((b) => ({ ...b, role: t.name })));
      snap.preparedTransactions.push(...(await collectPrepared(reader, t.name)).map((p) => ({ ...p, role: t.name })));
    }
    snap.hiddenBackends = await collectHiddenBackends(reader, major);
  };

  const hbaStep = async (step: ReportStep): Promise<string> => {
    const file = step.file!;
    const roles = targets.map((t) => t.name).filter((r) => !state.hba.perRole[r] && !state.hba.present.includes(r));
    const note = hbaNote(roles, file);
    const rolesArray = [roles];
    if (dry) {
      await exec.writeFile(step, file, '', note);
      await exec.run(step, RELOAD_CONF);
      await exec.run(step, HBA_ERRORS_SQL);
      await exec.run(step, HBA_OURS_SQL, { values: rolesArray });
      return `would prepend a reject block for ${roles.length} role(s) to ${file}, reload, and check pg_hba_file_rules`;
    }
    const open = [...suspects.values()].filter((x) => x.resolution === 'open' || x.resolution === 'unresolved');
    if (open.length)
      throw new StepSkipped(
        `hidden backend(s) ${open.map((x) => x.pid).join(', ')} are still unresolved: a configuration reload signals every backend and would wake them, and they would run as the role at once`,
      );
    // read, modify, write, reload and check under the HBA locks, from the file as it is now (another
    // operator's edit made while we waited is kept); a link's target is what is written
    return withHbaLock({ params: deps.params, serverLock: deps.hbaServerLock }, file, async (target) => {
      const where = target === file ? file : `${target} (${file} links to it; the link is kept)`;
      const before = await reader.query<{ line_number: number; error: string }>(HBA_ERRORS_SQL);
      const blockingBefore = before.rows.filter((r) => isBlockingHbaError(r.error));
      if (blockingBefore.length)
        throw new StepSkipped(
          `${file} already has error rows (${blockingBefore.map((r) => `line ${r.line_number}: ${r.error}`).join('; ')}): a reload would be refused as a whole, so the reject block could not take effect; fix the file first`,
        );
      const next = withBlocks(await readFile(target, 'utf8'), roles, clock());
      if (!next) throw new StepSkipped(`a pgrevoke reject block for each target is already in ${file}`);
      const lines = next.content.split('\n').slice(0, next.added.length * 4);
      const written = await exec.writeFile(step, target, next.content, note);
      changed = true;
      report.hba = { file, written: target, backup: written?.backup ?? null, lines };
      await exec.run(step, RELOAD_CONF);
      const errors = (await exec.run(step, HBA_ERRORS_SQL))[0]?.rows ?? [];
      const blocking = errors.filter((r) => isBlockingHbaError(String(r.error)));
      if (blocking.length) {
        const text = blocking.map((r) => `line ${String(r.line_number)}: ${String(r.error)}`).join('; ');
        if (written) {
          await exec.restoreFile(step, target, written.backup, `-- restore ${target} from ${written.backup}`);
          await exec.run(step, RELOAD_CONF);
        }
        throw new Error(
          `pg_hba_file_rules shows error rows after the edit (${text}); the backup was restored and the configuration reloaded`,
        );
      }
      const ours = (await exec.run(step, HBA_OURS_SQL, { values: rolesArray }))[0]?.rows ?? [];
      const missing = roles.filter((r) => !ours.some((o) => (o.user_name as string[] | null)?.includes(r)));
      if (missing.length)
        throw new Error(
          `the server's pg_hba_file_rules does not show the reject lines for ${missing.map((m) => JSON.stringify(m)).join(', ')}: is ${file} the server's hba_file?`,
        );
      await confirmEdit(target, { added: next.blocks });
      const lineNos = ours.map((o) => n(o.line_number));
      return `prepended ${lines.length} line(s) to ${where} (reject rules now at line(s) ${lineNos.join(', ')}); backup ${written?.backup ?? '-'}; reloaded; no error rows`;
    });
  };

  // standby: its primary never committed NOLOGIN (down, refused, failed): no replay will come
  let noNologin = false;
  const awaitReplay = async (step: ReportStep): Promise<string> => {
    const { timeoutS } = plan.options.settle;
    if (dry) {
      await exec.run(step, REPLAY_POSITION, { values: ['<primary WAL position after the NOLOGIN commit>'] });
      return "would wait until this standby has replayed the primary's NOLOGIN commit";
    }
    const t0 = Date.now();
    const target = (await deps.replayTarget) ?? null;
    const replay: ReplayReport = { target, replayed: null, lagBytes: null, caughtUp: false, waitedMs: 0 };
    report.replay = replay;
    if (target === null) {
      replay.waitedMs = Date.now() - t0;
      noNologin = true;
      throw new Error(
        "the primary did not commit NOLOGIN (not reached, refused or failed: see its section): nothing to wait for; ending the role's sessions here and rejecting it at this node's pg_hba.conf",
      );
    }
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const row = (await exec.run(step, REPLAY_POSITION, { values: [target] }))[0]?.rows[0] ?? {};
      replay.replayed = s(row.replayed);
      replay.lagBytes = row.lag_bytes === null || row.lag_bytes === undefined ? null : n(row.lag_bytes);
      replay.caughtUp = row.caught_up === true;
      replay.waitedMs = Date.now() - t0;
      if (replay.caughtUp || interrupt.interrupted || Date.now() >= deadline) break;
      await interrupt.sleep(10);
    }
    if (interrupt.interrupted && !replay.caughtUp) throw new Interrupted();
    if (!replay.caughtUp) {
      report.exposure.push(
        `this standby had not replayed the primary's NOLOGIN after ${timeoutS} s (${replay.lagBytes ?? '?'} bytes behind): it may still accept new logins of the role`,
      );
      return `replay at ${replay.replayed ?? '?'}, still ${replay.lagBytes ?? '?'} bytes behind ${target} after ${replay.waitedMs} ms; terminating anyway`;
    }
    return `replayed ${target} after ${replay.waitedMs} ms (replay at ${replay.replayed ?? '?'})`;
  };

  const blockerKeys = new Set<string>();
  /** After a lock timeout: end the role's backends, record every lock holder that can block the ALTER. */
  const clearBlockers = async (step: ReportStep): Promise<void> => {
    const look = async (what: string, sql: string): Promise<Row[]> => {
      try {
        return (await exec.run(step, sql))[0]?.rows ?? [];
      } catch (err) {
        report.warnings.push(`could not look for the ${what} blocking the containment statement: ${sqlError(err)}`);
        return [];
      }
    };
    // apart: the second reads role memberships, which a lock on pg_authid may hold up
    const rows = await look('sessions', blockers(oids));
    const prepared = await look('prepared transactions', preparedBlockers(oids));
    const pids = [...new Set(rows.filter((r) => r.target === true).map((r) => n(r.pid)))];
    const ended = pids.length ? await endBackends(step, pids) : new Set<number>();
    if (ended.size) changed = true;
    // pg_stat_get_activity() carries no names, and none is read under a catalog lock: the role's is known here
    recordTerminated(
      rows.filter((r) => ended.has(n(r.pid))).map((r) => ({ ...r, usename: nameByOid.get(n(r.usesysid)) ?? null, terminated: true })),
      false,
    );
    const rolledBack = await rollBackBlocking(
      step,
      prepared.filter((r) => r.target === true),
    );
    for (const r of rows) if (r.mode !== null && r.mode !== undefined) addBlocker(r, ended.has(n(r.pid)));
    for (const r of prepared) addBlocker(r, rolledBack.has(String(r.gid)));
  };

  const addBlocker = (r: Row, ended: boolean) => {
    const key = `${String(r.pid ?? r.gid)}:${String(r.mode)}:${String(r.relation)}`;
    if (blockerKeys.has(key)) return;
    blockerKeys.add(key);
    report.contain!.blockers.push({
      pid: r.pid === undefined || r.pid === null ? null : n(r.pid),
      gid: s(r.gid),
      role: r.target === true ? (nameByOid.get(n(r.usesysid)) ?? null) : null,
      user: null,
      userOid: r.usesysid === null ? null : n(r.usesysid),
      mode: String(r.mode),
      relation: String(r.relation),
      application: s(r.application_name),
      query: queryText(s(r.query)),
      terminated: ended,
      at: clock().toISOString(),
    });
  };

  /** The role's prepared transactions that hold what the ALTER needs: rolled back now, not after containment. */
  const rollBackBlocking = async (step: ReportStep, rows: Row[]): Promise<Set<string>> => {
    const done = new Set<string>();
    for (const r of rows) {
      const gid = String(r.gid);
      if (done.has(gid)) continue;
      try {
        await exec.run(step, rollbackPrepared(gid), { database: s(r.database) });
        done.add(gid);
        changed = true;
        report.warnings.push(
          `prepared transaction '${gid}' of the role held ${String(r.mode)} on a catalog the ALTER needs: rolled back before containment`,
        );
      } catch (err) {
        report.warnings.push(`could not roll back the blocking prepared transaction '${gid}': ${sqlError(err)}`);
      }
    }
    return done;
  };

  /** pg_terminate_backend(), or, when a lock on pg_authid blocks even that, SIGTERM from this host. */
  const endBackends = async (step: ReportStep, pids: number[]): Promise<Set<number>> => {
    try {
      const rows = (await exec.run(step, terminateListed(pids))).at(-1)?.rows ?? [];
      return new Set(rows.filter((r) => r.terminated === true).map((r) => n(r.pid)));
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03' || interrupt.interrupted) throw err;
      const sent = await exec.signalBackends(step, pids).catch((): number[] => []);
      if (sent.length < pids.length)
        report.warnings.push(
          `pg_terminate_backend() was blocked by a lock on pg_authid and backend(s) ${pids.filter((p) => !sent.includes(p)).join(', ')} could not be signalled from this host (run pgrevoke on the database host as root or the server's OS user, or keep a pgrevoke guard running)`,
        );
      return new Set(sent);
    }
  };

  /** Fill in the blockers' user and relation names once the locks are gone, and warn about the bystanders. */
  const nameBlockers = async (): Promise<void> => {
    const list = report.contain?.blockers ?? [];
    if (!list.length) return;
    const roleOids = [...new Set(list.flatMap((b) => (b.userOid === null ? [] : [b.userOid])))];
    const relOids = [...new Set(list.map((b) => Number(b.relation)))];
    const names = await reader
      .query<{ kind: string; oid: string; name: string }>(BLOCKER_NAMES, [roleOids, relOids])
      .then((r) => r.rows)
      .catch(() => []);
    const named = (kind: string, oid: number | string | null) => names.find((x) => x.kind === kind && n(x.oid) === n(oid))?.name;
    for (const b of list) {
      b.user = (b.userOid === null ? undefined : named('role', b.userOid)) ?? b.user;
      b.relation = named('relation', b.relation) ?? b.relation;
      if (!b.terminated)
        report.warnings.push(
          `${b.pid !== null ? `pid ${b.pid}` : `prepared transaction '${b.gid ?? '?'}'`} (${b.user ?? `role OID ${b.userOid ?? '?'}`}) held ${b.mode} on ${b.relation}, which the containment statement waited for; not terminated: it is not a session of the target`,
        );
    }
  };

  const nologinCommitted = async (): Promise<boolean> => {
    // the ALTER's own result (NOLOGIN and CONNECTION LIMIT 0) on every target; unreadable is "no"
    const now = await reader
      .query<{ oid: string; rolcanlogin: boolean; rolconnlimit: number }>(roleState(oids))
      .catch(() => ({ rows: [] }));
    return targets.every((t) => now.rows.some((r) => n(r.oid) === t.oid && !r.rolcanlogin && n(r.rolconnlimit) === 0));
  };

  /** The containment statement failed for good: did its COMMIT go through before the failure? */
  const containFailed = async (err: unknown): Promise<string> => {
    const blockedBy = (report.contain?.blockers ?? []).length ? ` (blockers: see contain.blockers)` : '';
    await nameBlockers();
    if (!(await nologinCommitted())) {
      if (interrupt.interrupted) throw new Interrupted();
      throw new Error(`nothing was committed: ${sqlError(err)}${blockedBy}`, { cause: err });
    }
    // the ALTERs committed and what came after them failed: the settle loop terminates instead
    changed = true;
    const at = (await reader.query<{ committed_at: string; commit_lsn: string }>(COMMITTED_AT).catch(() => null))?.rows[0];
    report.committedAt = at?.committed_at ?? null;
    report.commitLsn = at?.commit_lsn ?? null;
    deps.onCommitted?.(report.commitLsn);
    cleanScans = 0;
    if (interrupt.interrupted) throw new Interrupted();
    report.warnings.push(`NOLOGIN committed, then the rest of the containment statement failed: ${sqlError(err)}`);
    return `NOLOGIN committed for ${targets.length} role(s); terminating in the same round trip failed (${sqlError(err)}): the settle loop terminates instead`;
  };

  /** A lock (or a concurrent update) held a containment statement up, and there is time to try again. */
  const worthRetry = (err: unknown, deadline: number) => !interrupt.interrupted && retryable(err) && Date.now() < deadline;

  /** The containment statement, tried again after a lock held it up, until the settle timeout; throws the last failure. */
  const runContain = async (step: ReportStep, stmt: Statement): Promise<ResultSet[]> => {
    const deadline = Date.now() + plan.options.settle.timeoutS * 1000;
    for (;;) {
      report.contain!.attempts++;
      try {
        return await exec.run(step, stmt);
      } catch (err) {
        if (!worthRetry(err, deadline) || (await nologinCommitted())) throw err;
        // a lock held against the ALTER: end the role's own holders, name the others, try again
        await clearBlockers(step);
      }
    }
  };

  /**
   * --include-created: a role a target made during the run (it holds ADMIN OPTION on it) joins the
   * targets and is contained at once; the settle loop then covers it with the rest.
   */
  const adoptCreated = async (step: ReportStep): Promise<number> => {
    if (dry || standby || !plan.options.includeCreated) return 0;
    const found = await adoptAdministered(reader, state).catch((err: unknown) => {
      report.warnings.push(`could not look for roles the targets made during the cutoff: ${sqlError(err)}`);
      return [];
    });
    if (!found.length) return 0;
    for (const { role, entry } of found) {
      oids.push(role.oid);
      nameByOid.set(role.oid, role.name);
      report.roles.push(entry);
    }
    const names = found.map((f) => JSON.stringify(f.role.name)).join(', ');
    const stmt = contain(
      found.map((f) => f.role),
      major,
      { strip: plan.options.stripPrivileges, rotatePassword: plan.options.rotatePassword },
    );
    let res: ResultSet[];
    try {
      res = await runContain(step, stmt);
    } catch (err) {
      // the settle loop re-applies NOLOGIN to any target that can still log in, these included
      report.warnings.push(
        `${names} made by a target during the cutoff: containing them failed (${sqlError(err)}); the settle loop tries again`,
      );
      return found.length;
    }
    changed = true;
    recordTerminated(res.at(-2)?.rows ?? [], false);
    addSuspects(res.at(-1)?.rows ?? []);
    report.warnings.push(`${names} made by a target during the cutoff (it holds ADMIN OPTION on them): contained too (--include-created)`);
    return found.length;
  };

  const containStep = async (step: ReportStep): Promise<string> => {
    if (standby) {
      const results = await exec.run(step, containStandby(oids, major));
      if (dry) {
        cleanScans = 1;
        return 'would terminate every backend of the role(s) on this standby and list hidden backends';
      }
      changed = true;
      const term = results.at(-2)?.rows ?? [];
      const hidden = results.at(-1)?.rows ?? [];
      recordTerminated(term, false);
      addSuspects(hidden);
      cleanScans = term.length === 0 ? 1 : 0;
      return `standby: terminated ${term.length} backend(s); ${hidden.length} hidden backend(s) (suspects)`;
    }
    const stmt = contain(targets, major, { strip: plan.options.stripPrivileges, rotatePassword: plan.options.rotatePassword });
    const attempt: ContainReport = { attempts: 0, blockers: [] };
    report.contain = attempt;
    let results: ResultSet[];
    try {
      results = await runContain(step, stmt);
    } catch (err) {
      return containFailed(err);
    }
    if (dry) {
      cleanScans = 1;
      return 'would commit NOLOGIN, then terminate every backend of the role(s) and list hidden backends';
    }
    changed = true;
    const term = results.at(-2)?.rows ?? [];
    const hidden = results.at(-1)?.rows ?? [];
    const committed = results.at(-3)?.rows[0];
    report.committedAt = s(committed?.committed_at);
    report.commitLsn = s(committed?.commit_lsn);
    deps.onCommitted?.(report.commitLsn);
    recordTerminated(term, false);
    addSuspects(hidden);
    cleanScans = term.length === 0 ? 1 : 0;
    await nameBlockers();
    await adoptCreated(step);
    const retried =
      attempt.attempts > 1
        ? `; ${attempt.attempts} attempts (blocked by a lock: ${attempt.blockers.length} holder(s), see contain.blockers)`
        : '';
    return `NOLOGIN committed for ${targets.length} role(s)${plan.options.rotatePassword ? ', password rotated' : ''}; terminated ${term.length} backend(s) in the same round trip; ${hidden.length} hidden backend(s) right after the commit (suspects)${retried}`;
  };

  /** A settle statement; blocked by a lock, the blockers are dealt with and null says "go round again". */
  const settleRun = async (step: ReportStep, stmt: string, deadline: number): Promise<ResultSet[] | null> => {
    try {
      return await exec.run(step, stmt);
    } catch (err) {
      if (!worthRetry(err, deadline)) throw err;
      await clearBlockers(step);
      return null;
    }
  };

  const settleStep = async (step: ReportStep): Promise<string> => {
    const { timeoutS, hiddenGraceMs, intervalMs } = plan.options.settle;
    const t0 = Date.now();
    const deadline = t0 + timeoutS * 1000;
    const settle: SettleReport = { iterations: 0, durationMs: 0, timedOut: false, suspects: [], reapplied: [], dropped: [] };
    report.settle = settle;
    const finish = () => {
      settle.durationMs = Date.now() - t0;
      settle.suspects = [...suspects.values()].map(({ pid, via, firstSeen, resolution, detail }) => ({
        pid,
        via,
        firstSeen,
        resolution,
        detail,
      }));
    };
    const dropped = new Set<string>();
    let stillLogin: string[] = []; // standby: roles the last round still saw able to log in
    try {
      for (;;) {
        if (interrupt.interrupted) throw new Interrupted();
        const res = await settleRun(step, settleRound(oids, major), deadline);
        if (!res) continue;
        settle.iterations++;
        // a dry run returns no results
        const [term, hidden, roles] = [-3, -2, -1].map((i) => res.at(i)?.rows ?? []) as [Row[], Row[], Row[]];
        recordTerminated(term, false);
        const visible = new Set(term.map((r) => n(r.pid)));
        const hiddenNow = new Set(hidden.map((r) => n(r.pid)));
        const now = Date.now();
        const kill: number[] = [];
        for (const sp of suspects.values()) {
          if (sp.resolution !== 'open') continue;
          if (!hiddenNow.has(sp.pid) && !visible.has(sp.pid)) {
            sp.resolution = sp.sent ? 'terminated' : 'left';
            sp.detail = sp.sent
              ? `terminated while still hidden, ${now - sp.since} ms after it was first seen`
              : `no longer hidden after ${now - sp.since} ms: it was refused or left, or it is another role's session`;
          } else if (hiddenNow.has(sp.pid) && !sp.sent && now - sp.since >= hiddenGraceMs) {
            if (deps.operator.superuser) kill.push(sp.pid);
            else
              sp.detail = `still hidden after the ${hiddenGraceMs} ms grace period; only a superuser can terminate a backend that has no role yet`;
          }
        }
        if (kill.length && !dry) {
          const rows = (await settleRun(step, terminatePids(kill, oids), deadline))?.at(-1)?.rows ?? [];
          const infos = new Map([...suspects.values()].map((x) => [x.pid, x.info]));
          for (const r of rows) {
            const sp = suspects.get(n(r.pid));
            if (sp && r.terminated === true) sp.sent = true;
          }
          recordTerminated(
            rows.filter((r) => r.terminated === true),
            true,
            infos,
          );
        }
        const flipped: RoleInfo[] = [];
        // without a NOLOGIN on the way, a standby's LOGIN is no reason to keep sweeping: HBA comes next
        if (!dry && !(standby && noNologin)) {
          for (const t of targets) {
            const row = roles.find((r) => n(r.oid) === t.oid);
            if (!row) {
              if (!dropped.has(t.name)) {
                dropped.add(t.name);
                settle.dropped.push(t.name);
              }
              continue;
            }
            const strip = plan.options.stripPrivileges && (t.superuser || t.createRole);
            if (row.rolcanlogin === true || n(row.rolconnlimit) !== 0 || (strip && (row.rolsuper === true || row.rolcreaterole === true)))
              flipped.push({ ...t, name: String(row.rolname), superuser: t.superuser, createRole: t.createRole });
          }
          stillLogin = standby ? flipped.map((f) => f.name) : [];
          if (flipped.length && standby) {
            // read-only here: the primary re-applies, and the loop goes on until that is replayed
            for (const f of flipped.filter((x) => !settle.reapplied.some((r) => r.role === x.name)))
              settle.reapplied.push({
                at: clock().toISOString(),
                role: f.name,
                detail: 'standby: the role can still log in here (NOLOGIN not replayed yet, or switched back on at the primary)',
              });
          } else if (flipped.length) {
            const out = await settleRun(step, reapply(flipped, major, { strip: plan.options.stripPrivileges }), deadline);
            addSuspects(out?.at(-1)?.rows ?? []);
            for (const f of flipped)
              settle.reapplied.push({
                at: clock().toISOString(),
                role: f.name,
                detail:
                  'LOGIN (or SUPERUSER/CREATEROLE, or the connection limit) was switched back on during the cutoff, presumably from a live session of the role: NOLOGIN applied again',
              });
          }
        }
        cleanScans = term.length === 0 && flipped.length === 0 ? cleanScans + 1 : 0;
        const open = [...suspects.values()].filter((x) => x.resolution === 'open');
        if (cleanScans >= 2 && open.length === 0) {
          // quiet: one last look for roles a target made before its sessions ended
          if (!(await adoptCreated(step))) break;
          cleanScans = 0;
        }
        if (Date.now() >= deadline) {
          settle.timedOut = true;
          for (const x of open) {
            x.resolution = 'unresolved';
            x.detail = x.detail ?? `still hidden when the ${timeoutS} s settle timeout ran out`;
          }
          break;
        }
        await interrupt.sleep(intervalMs);
      }
    } finally {
      finish();
    }
    if (dry) return 'would repeat until no backend of the role is seen twice in a row and every hidden suspect is resolved';
    const unresolved = settle.suspects.filter((x) => x.resolution === 'unresolved');
    if (settle.timedOut) {
      for (const r of stillLogin)
        report.exposure.push(
          `${JSON.stringify(r)} can still log in on this standby: NOLOGIN had not been replayed here when the ${timeoutS} s settle timeout ran out`,
        );
      if (cleanScans < 2 && stillLogin.length === 0)
        report.exposure.push(`backends of the role were still seen when the ${timeoutS} s settle timeout ran out`);
      for (const u of unresolved) report.exposure.push(`hidden backend ${u.pid} (role unknown) was not resolved: ${u.detail}`);
    }
    for (const r of settle.reapplied) report.warnings.push(`${JSON.stringify(r.role)}: ${r.detail}`);
    const sum = (k: Suspect['resolution']) => settle.suspects.filter((x) => x.resolution === k).length;
    return (
      `${settle.iterations} round(s) in ${settle.durationMs} ms; ${report.terminated.length} backend(s) terminated in all; ` +
      `suspects: ${settle.suspects.length} (${sum('left')} left, ${sum('terminated')} terminated while hidden, ${unresolved.length} unresolved)` +
      (settle.reapplied.length
        ? standby
          ? '; waited for NOLOGIN to be replayed here'
          : `; NOLOGIN re-applied ${settle.reapplied.length} time(s)`
        : '') +
      (settle.timedOut ? '; TIMED OUT' : '')
    );
  };

  // Steps for objects found again after containment (an attacker may have made new ones meanwhile).
  const refreshed = new Set<string>();
  const refresh = async (action: ReportStep['action'], index: number) => {
    if (refreshed.has(action)) return;
    refreshed.add(action);
    const have = report.steps.filter((x) => x.action === action);
    const make = (x: Partial<PlanStep> & Pick<PlanStep, 'sql' | 'database' | 'role' | 'reason'>): ReportStep => ({
      index: 0,
      action,
      node: plan.node,
      skip: null,
      ...x,
      status: 'planned',
      executed: [],
      startedAt: null,
      durationMs: null,
      detail: 'found after containment (not in the plan)',
    });
    const extra: ReportStep[] = [];
    if (action === 'rollback_prepared') {
      for (const t of targets)
        for (const p of await collectPrepared(reader, t.name))
          if (!have.some((h) => h.gid === p.gid))
            extra.push(
              make({
                database: p.database,
                role: t.name,
                gid: p.gid,
                sql: [rollbackPrepared(p.gid)],
                reason: 'prepared after the plan was made',
              }),
            );
    } else if (action === 'disable_subscriptions') {
      for (const t of targets)
        for (const sub of (await reader.query<{ name: string; database: string }>(SUBSCRIPTIONS_SQL, [t.oid])).rows)
          if (!have.some((h) => h.subscription === sub.name && h.database === sub.database))
            extra.push(
              make({
                database: sub.database,
                role: t.name,
                subscription: sub.name,
                sql: [disableSubscription(sub.name), terminate(oids)],
                reason: 'created after the plan was made',
              }),
            );
    } else if (action === 'reassign_owned' || action === 'drop_owned') {
      for (const t of targets)
        for (const o of (await reader.query<{ database: string | null; shared: boolean }>(OWNED_DATABASES_SQL, [t.oid])).rows)
          if (o.database && !o.shared && !have.some((h) => h.role === t.name && h.database === o.database))
            extra.push(
              make({
                database: o.database,
                role: t.name,
                sql: [action === 'reassign_owned' ? reassignOwned(t.name, plan.options.reassignTo!) : dropOwned(t.name)],
                reason: 'objects appeared in this database after the plan was made',
              }),
            );
    }
    if (!extra.length) return;
    const last = Math.max(index, ...have.map((h) => report.steps.indexOf(h)));
    report.steps.splice(last + 1, 0, ...extra);
    report.steps.forEach((x, i) => (x.index = i));
  };

  const rollbackStep = async (step: ReportStep): Promise<string> => {
    // one found after containment: the plan skips the others for the same reason (42501 otherwise)
    if (!plan.operator.superuser) {
      const why = cannotRollBack(plan.operator.user, { gid: step.gid!, database: step.database! });
      report.exposure.push(
        `prepared transaction of ${JSON.stringify(step.role)} ${literal(step.gid!)} in ${ident(step.database!)}: ${why}`,
      );
      throw new StepSkipped(why);
    }
    try {
      await exec.run(step, rollbackPrepared(step.gid!));
    } catch (err) {
      if ((err as { code?: string }).code === '42704')
        throw new StepSkipped(`prepared transaction '${step.gid}' no longer exists (committed or rolled back meanwhile)`);
      throw err;
    }
    if (dry) return `would roll back '${step.gid}' in ${step.database}`;
    changed = true;
    return `rolled back '${step.gid}' in ${step.database}; its locks are released`;
  };

  const checkLocks = async (step: ReportStep): Promise<string> => {
    const former = [...new Set([...(report.snapshot?.sessions.map((x) => x.pid) ?? []), ...report.terminated.map((t) => t.pid)])];
    const blockedBefore = [...new Set(report.snapshot?.blocking.map((b) => b.blockedPid) ?? [])];
    // a standby's prepared transactions are the primary's, rolled back there and replayed here
    const owners = standby ? [] : targets.map((t) => t.name);
    const remaining = (await exec.run(step, LOCKS_REMAINING, { values: [former, owners] }))[0]?.rows ?? [];
    const still = (await exec.run(step, STILL_BLOCKED, { values: [blockedBefore] }))[0]?.rows ?? [];
    if (dry) {
      // a prepared transaction the plan cannot roll back keeps its locks: the dry run says so
      const left = report.steps.filter((x) => x.action === 'rollback_prepared' && x.skip && x.gid).map((x) => literal(x.gid!));
      return left.length
        ? `would list the locks that remain (those of prepared ${left.join(', ')} will: it cannot be rolled back here) and the sessions still blocked`
        : 'would confirm that no lock of the role remains and list the sessions it had blocked';
    }
    const formerSet = new Set(former);
    const stillBlocked = still
      .map((r) => ({ pid: n(r.pid), user: s(r.usename), blockedBy: ((r.blocked_by as number[] | null) ?? []).map(n) }))
      .filter((r) => r.blockedBy.some((p) => formerSet.has(p) || (p === 0 && remaining.some((x) => x.prepared_gid))));
    const released = (report.snapshot?.blocking ?? [])
      .filter((b) => !stillBlocked.some((x) => x.pid === b.blockedPid))
      .map((b) => ({
        pid: b.blockedPid,
        user: b.blockedUser,
        blockedBy: b.blockerGid ? `prepared '${b.blockerGid}'` : `pid ${b.blockerPid}`,
      }));
    report.locks = { remaining, released, stillBlocked };
    // each prepared transaction left (not rolled back, or not by this operator) by gid, database and what it holds
    const held = new Map<string, string[]>();
    for (const r of remaining.filter((x) => x.prepared_gid)) {
      const px = `${literal(s(r.prepared_gid)!)} in ${ident(s(r.prepared_database)!)}`;
      held.set(px, [...(held.get(px) ?? []), s(r.description)!]);
    }
    if (remaining.length)
      report.exposure.push(
        `${remaining.length} lock(s) of the role's former backends or prepared transactions remain` +
          [...held].map(([px, locks]) => `; prepared ${px} holds ${locks.join(', ')}`).join(''),
      );
    if (stillBlocked.length) report.exposure.push(`session(s) ${stillBlocked.map((x) => x.pid).join(', ')} are still blocked by the role`);
    return (
      `${remaining.length === 0 ? 'no lock of the role remains' : `${remaining.length} lock(s) remain`}; ` +
      `${released.length} blocked session(s) released${released.length ? ` (${[...new Set(released.map((r) => r.pid))].join(', ')})` : ''}` +
      (stillBlocked.length ? `; still blocked: ${stillBlocked.map((x) => x.pid).join(', ')}` : '')
    );
  };

  const disableStep = async (step: ReportStep): Promise<string> => {
    await exec.run(step, disableSubscription(step.subscription!));
    if (!dry) changed = true;
    const rows = (await exec.run(step, terminate(oids), { database: null }))[0]?.rows ?? [];
    recordTerminated(rows, false);
    if (dry) return `would disable subscription ${step.subscription} in ${step.database}`;
    return `disabled ${step.subscription} in ${step.database}${rows.length ? `; terminated ${rows.length} restarted worker(s)` : ''}`;
  };

  const simpleWrite = async (step: ReportStep): Promise<string> => {
    for (const sql of step.sql) await exec.run(step, sql);
    if (dry) return `would run in ${step.database ?? plan.node}`;
    changed = true;
    return `done${step.database ? ` in ${step.database}` : ''}`;
  };

  const verify = async (): Promise<string> => {
    if (dry) return 'would collect and evaluate each role as pgrevoke inspect does';
    const out: string[] = [];
    for (const t of targets) {
      const row = (await reader.query<Parameters<typeof toRoleInfo>[0]>(ROLE_BY_OID_SQL, [t.oid])).rows[0];
      let v: Verification;
      if (!row) {
        const sessions = await collectSessions(reader, t.oid);
        const findings = sessionsCheck.evaluate({ sessions } as RoleFacts);
        v = { role: t.name, oid: t.oid, verdict: findings.some((f) => f.exposure) ? 'exposed' : 'contained', findings, after: null };
      } else {
        const info = toRoleInfo(row);
        // loaded here, after containment: the full inspect is not on the critical path
        const { collectFacts, evaluate } = await import('../inspect/index.js');
        const facts = await collectFacts(deps.params, reader, state.server, info, { concurrency: 4 });
        const ev = evaluate(facts);
        v = {
          role: t.name,
          oid: t.oid,
          verdict: ev.verdict,
          findings: ev.findings,
          after: { canLogin: info.canLogin, superuser: info.superuser, createRole: info.createRole, connectionLimit: info.connectionLimit },
        };
      }
      report.verification.push(v);
      const exposures = v.findings.filter((f) => f.exposure);
      for (const f of exposures) report.exposure.push(`${JSON.stringify(t.name)}: ${f.id}: ${f.title}`);
      out.push(`${JSON.stringify(t.name)} ${v.verdict}${exposures.length ? ` (${exposures.map((f) => f.id).join(', ')})` : ''}`);
    }
    return out.join('; ');
  };

  // ---- the walk ----
  const DYNAMIC = new Set<ReportStep['action']>(['rollback_prepared', 'disable_subscriptions', 'reassign_owned', 'drop_owned']);
  let failedAt: ReportStep | null = null;
  for (let i = 0; i < report.steps.length; i++) {
    const step = report.steps[i]!;
    if (interrupt.interrupted) {
      report.interrupted = true;
      break;
    }
    if (DYNAMIC.has(step.action) && !standby) {
      try {
        await refresh(step.action, i);
      } catch (err) {
        report.warnings.push(`could not look for ${step.action} targets found after containment: ${sqlError(err)}`);
      }
    }
    if (step.skip) {
      step.status = 'skipped';
      step.detail = step.skip;
      continue;
    }
    // a contain failure leaves nothing to settle; stop containment-dependent work
    if (failedAt?.action === 'contain' && step.action !== 'verify') {
      step.status = 'skipped';
      step.detail = 'not run: the contain step failed';
      continue;
    }
    const started = clock();
    step.startedAt = started.toISOString();
    const t0 = performance.now();
    const logFrom = exec.log.length;
    deps.onStep?.(step, 'start');
    try {
      let detail: string;
      switch (step.action) {
        case 'snapshot':
          detail = await snapshot();
          break;
        case 'hba_reject':
          detail = await hbaStep(step);
          break;
        case 'await_replay':
          detail = await awaitReplay(step);
          break;
        case 'contain':
          detail = await containStep(step);
          break;
        case 'settle':
          detail = await settleStep(step);
          break;
        case 'rollback_prepared':
          detail = await rollbackStep(step);
          break;
        case 'check_locks':
          detail = await checkLocks(step);
          break;
        case 'disable_subscriptions':
          detail = await disableStep(step);
          break;
        case 'reassign_owned':
        case 'drop_owned':
        case 'drop_role':
          detail = await simpleWrite(step);
          break;
        case 'verify':
          detail = await verify();
          break;
      }
      step.status = dry && step.action !== 'snapshot' ? 'planned' : 'done';
      step.detail = detail;
    } catch (err) {
      if (err instanceof Interrupted || (interrupt.interrupted && !(err instanceof StepSkipped))) {
        // a cancelled statement fails with 57014: that is the interrupt, not a fault of the step
        step.status = 'failed';
        step.detail = `interrupted (${interrupt.reason}) before this step finished`;
        report.interrupted = true;
      } else if (err instanceof StepSkipped) {
        step.status = 'skipped';
        step.detail = err.message;
      } else {
        step.status = 'failed';
        step.detail = sqlError(err);
        failedAt = failedAt ?? step;
      }
    }
    step.durationMs = Math.round(performance.now() - t0);
    step.executed = [...new Set(exec.log.slice(logFrom).map((l) => l.sql))];
    deps.onStep?.(step, 'end');
    if (report.interrupted) break;
  }
  if (report.interrupted) {
    for (const st of report.steps)
      if (st.status === 'planned' && st.startedAt === null) {
        st.status = 'skipped';
        st.detail = 'interrupted';
      }
  }
  if (!dry) report.exposure.push(...cutShortExposure(report, [...suspects.values()], standby, interrupt.reason));
  if (noNologin)
    report.exposure.push(
      report.steps.some((st) => st.action === 'hba_reject' && st.status === 'done')
        ? 'the primary did not commit NOLOGIN: the role keeps LOGIN, and on this standby only the pgrevoke block in pg_hba.conf rejects it'
        : 'the primary did not commit NOLOGIN: this standby still accepts new logins of the role',
    );
  report.finishedAt = clock().toISOString();
  report.exitCode = exitCodeFor(report, changed);
  return report;
}

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

/** The report of a cutoff refused before anything changed (privileges, standby): every step skipped, exit 2. */
export function refusedReport(
  plan: Plan,
  operator: CutoffReport['operator'],
  why: string,
  reasonText: string | null,
  dryRun: boolean,
): CutoffReport {
  const now = new Date().toISOString();
  return {
    schemaVersion: CUTOFF_SCHEMA_VERSION,
    roles: plan.roles,
    playbook: plan.playbook,
    dryRun,
    node: plan.node,
    server: plan.server,
    operator,
    reasonText,
    startedAt: now,
    finishedAt: now,
    committedAt: null,
    commitLsn: null,
    replay: null,
    contain: null,
    steps: plan.steps.map((st) => ({
      ...st,
      status: 'skipped',
      executed: [],
      startedAt: null,
      durationMs: null,
      detail: `refused before any change: ${why}`,
    })),
    snapshot: null,
    terminated: [],
    settle: null,
    locks: null,
    hba: null,
    verification: [],
    exposure: [],
    warnings: [...plan.warnings],
    interrupted: false,
    exitCode: 2,
  };
}

/** 0 contained and verified; 1 ran, exposure remains; 2 nothing changed (refused, failed before any change); 3 failed or interrupted partway. */
export function exitCodeFor(report: Pick<CutoffReport, 'interrupted' | 'steps' | 'dryRun' | 'exposure'>, changed: boolean): number {
  if (report.interrupted) return 3;
  if (report.steps.some((x) => x.status === 'failed')) return changed ? 3 : 2;
  if (report.dryRun) return 0;
  if (report.exposure.length) return 1;
  return 0;
}
