// Who holds the lock a containment statement waited for: the role's own backends are ended and its
// prepared transactions rolled back at once; anyone else's is named in contain.blockers, never
// terminated. Shared by the contain step and the settle loop (both retry after a lock timeout).
import type { ReportStep } from '../record/cutoff-report.js';
import { num, str, sqlError, type Run } from './run.js';
import { BLOCKER_NAMES, blockers, preparedBlockers, rollbackPrepared, terminateListed } from './sql.js';
import { queryText } from '../pg/redact.js';

type Row = Record<string, unknown>;

/** After a lock timeout: end the role's backends, record every lock holder that can block the ALTER. */
export async function clearBlockers(run: Run, step: ReportStep): Promise<void> {
  const look = async (what: string, sql: string): Promise<Row[]> => {
    try {
      return (await run.exec.run(step, sql))[0]?.rows ?? [];
    } catch (err) {
      run.warn(`could not look for the ${what} blocking the containment statement: ${sqlError(err)}`);
      return [];
    }
  };
  // apart: the second reads role memberships, which a lock on pg_authid may hold up
  const rows = await look('sessions', blockers(run.oids));
  const prepared = await look('prepared transactions', preparedBlockers(run.oids));
  const pids = [...new Set(rows.filter((r) => r.target === true).map((r) => num(r.pid)))];
  const ended = pids.length ? await endBackends(run, step, pids) : new Set<number>();
  if (ended.size) run.changed = true;
  // pg_stat_get_activity() carries no names, and none is read under a catalog lock: the role's is known here
  run.recordTerminated(
    rows.filter((r) => ended.has(num(r.pid))).map((r) => ({ ...r, usename: run.nameByOid.get(num(r.usesysid)) ?? null, terminated: true })),
    false,
  );
  const rolledBack = await rollBackBlocking(
    run,
    step,
    prepared.filter((r) => r.target === true),
  );
  for (const r of rows) if (r.mode !== null && r.mode !== undefined) addBlocker(run, r, ended.has(num(r.pid)));
  for (const r of prepared) addBlocker(run, r, rolledBack.has(String(r.gid)));
}

function addBlocker(run: Run, r: Row, ended: boolean): void {
  const seen = run.blockerKeys;
  const key = `${String(r.pid ?? r.gid)}:${String(r.mode)}:${String(r.relation)}`;
  if (seen.has(key)) return;
  seen.add(key);
  run.report.contain!.blockers.push({
    pid: r.pid === undefined || r.pid === null ? null : num(r.pid),
    gid: str(r.gid),
    role: r.target === true ? (run.nameByOid.get(num(r.usesysid)) ?? null) : null,
    user: null,
    userOid: r.usesysid === null ? null : num(r.usesysid),
    mode: String(r.mode),
    relation: String(r.relation),
    application: str(r.application_name),
    query: queryText(str(r.query)),
    terminated: ended,
    at: run.clock().toISOString(),
  });
}

/** The role's prepared transactions that hold what the ALTER needs: rolled back now, not after containment. */
async function rollBackBlocking(run: Run, step: ReportStep, rows: Row[]): Promise<Set<string>> {
  const done = new Set<string>();
  for (const r of rows) {
    const gid = String(r.gid);
    if (done.has(gid)) continue;
    try {
      await run.exec.run(step, rollbackPrepared(gid), { database: str(r.database) });
      done.add(gid);
      run.changed = true;
      run.warn(
        `prepared transaction '${gid}' of the role held ${String(r.mode)} on a catalog the ALTER needs: rolled back before containment`,
      );
    } catch (err) {
      run.warn(`could not roll back the blocking prepared transaction '${gid}': ${sqlError(err)}`);
    }
  }
  return done;
}

/** pg_terminate_backend(), or, when a lock on pg_authid blocks even that, SIGTERM from this host. */
async function endBackends(run: Run, step: ReportStep, pids: number[]): Promise<Set<number>> {
  try {
    const rows = (await run.exec.run(step, terminateListed(pids))).at(-1)?.rows ?? [];
    return new Set(rows.filter((r) => r.terminated === true).map((r) => num(r.pid)));
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03' || run.interrupt.interrupted) throw err;
    const sent = await run.exec.signalBackends(step, pids).catch((): number[] => []);
    if (sent.length < pids.length)
      run.warn(
        `pg_terminate_backend() was blocked by a lock on pg_authid and backend(s) ${pids.filter((p) => !sent.includes(p)).join(', ')} could not be signalled from this host (run pgrevoke on the database host as root or the server's OS user, or keep a pgrevoke guard running)`,
      );
    return new Set(sent);
  }
}

/** Fill in the blockers' user and relation names once the locks are gone, and warn about the bystanders. */
export async function nameBlockers(run: Run): Promise<void> {
  const list = run.report.contain?.blockers ?? [];
  if (!list.length) return;
  const roleOids = [...new Set(list.flatMap((b) => (b.userOid === null ? [] : [b.userOid])))];
  const relOids = [...new Set(list.map((b) => Number(b.relation)))];
  const names = await run.reader
    .query<{ kind: string; oid: string; name: string }>(BLOCKER_NAMES, [roleOids, relOids])
    .then((r) => r.rows)
    .catch(() => []);
  const named = (kind: string, oid: number | string | null) => names.find((x) => x.kind === kind && num(x.oid) === num(oid))?.name;
  for (const b of list) {
    b.user = (b.userOid === null ? undefined : named('role', b.userOid)) ?? b.user;
    b.relation = named('relation', b.relation) ?? b.relation;
    if (!b.terminated)
      run.warn(
        `${b.pid !== null ? `pid ${b.pid}` : `prepared transaction '${b.gid ?? '?'}'`} (${b.user ?? `role OID ${b.userOid ?? '?'}`}) held ${b.mode} on ${b.relation}, which the containment statement waited for; not terminated: it is not a session of the target`,
      );
  }
}
