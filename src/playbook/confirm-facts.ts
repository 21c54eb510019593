// What the confirmation shows beyond the plan: the sessions the cutoff will end (and how long each
// running query has run), the backends hidden right now, and the other sessions waiting on the
// targets' locks. Read once, read-only, only when a person is about to be asked: never on the
// --yes path, whose every round trip delays containment.
import { collectHiddenBackends } from '../checks/hidden-backends.js';
import { collectBlocking } from '../checks/locks.js';
import { collectSessions } from '../checks/sessions.js';
import type { BlockingRow, HiddenBackend, Queryable, SessionRow } from '../checks/types.js';
import type { Plan } from './model.js';
import { sqlError } from './run.js';

export interface DoomedSession extends SessionRow {
  /** The target it runs as. */
  role: string;
  /** Seconds its current query has been running (active sessions; null for the others). */
  runningS: number | null;
}

export interface ConfirmFacts {
  /** Every backend of the targets: contain terminates them all. */
  sessions: DoomedSession[];
  /** Past authentication, not yet visible: settle watches them. */
  hidden: HiddenBackend[];
  /** Other sessions waiting on a target's locks (its sessions or prepared transactions), once each. */
  blocked: BlockingRow[];
  /** The read failed (the plan still stands): why. */
  error: string | null;
}

// query_start is not among the shared activity columns, and timestamps come back as text in the
// server's DateStyle: the server's own clock gives the age.
const RUNNING_SQL = `SELECT pid, extract(epoch FROM now() - query_start)::float8 AS running_s
FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state = 'active'`;

/** The facts of one node's plan, on the client that planned it (idle while the prompt waits). */
export async function readConfirmFacts(q: Queryable, plan: Plan): Promise<ConfirmFacts> {
  try {
    const sessions: DoomedSession[] = [];
    const blocked = new Map<number, BlockingRow>();
    for (const r of plan.roles) {
      for (const s of await collectSessions(q, r.oid)) sessions.push({ ...s, role: r.name, runningS: null });
      for (const b of await collectBlocking(q, r.oid, r.name)) if (!blocked.has(b.blockedPid)) blocked.set(b.blockedPid, b);
    }
    const { rows } = await q.query<{ pid: number; running_s: number | null }>(RUNNING_SQL, [sessions.map((s) => s.pid)]);
    for (const row of rows) sessions.find((s) => s.pid === row.pid)!.runningS = row.running_s;
    const mine = new Set(sessions.map((s) => s.pid));
    return {
      sessions,
      hidden: await collectHiddenBackends(q, plan.server.major),
      // a target's session waiting on another of them is ended, not released
      blocked: [...blocked.values()].filter((b) => !mine.has(b.blockedPid)),
      error: null,
    };
  } catch (err) {
    return { sessions: [], hidden: [], blocked: [], error: sqlError(err) };
  }
}
