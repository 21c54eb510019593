// The snapshot's results (snapshotReads(), or the tail of planReads() with `snapshot`) as the report
// holds them: per target its sessions, locks, blocked sessions and prepared transactions, then the
// hidden backends. One place, for the snapshot step and for the plan state that carries one.
import { toHiddenBackends } from '../checks/hidden-backends.js';
import { toBlockingRows, toLockRows } from '../checks/locks.js';
import { toPreparedXacts } from '../checks/prepared-xacts.js';
import { toSession, type ActivityRow } from '../checks/sessions.js';
import type { Snapshot } from '../record/cutoff-report.js';
import { SNAPSHOT_PARTS } from './sql.js';

/** `results`: SNAPSHOT_PARTS per name of `names`, then the hidden backends; only the targets in `keep` are kept. */
export function toSnapshot(results: object[][], names: readonly string[], takenAt: string, keep?: ReadonlySet<string>): Snapshot {
  const n = SNAPSHOT_PARTS.length;
  if (results.length !== names.length * n + 1) throw new Error(`snapshot: ${results.length} results to ${names.length * n + 1} statements`);
  const snap: Snapshot = { takenAt, sessions: [], hiddenBackends: [], locks: [], blocking: [], preparedTransactions: [] };
  names.forEach((role, i) => {
    if (keep && !keep.has(role)) return;
    const [sessions, locks, blocking, prepared] = results.slice(i * n, i * n + n) as [object[], object[], object[], object[]];
    snap.sessions.push(...(sessions as ActivityRow[]).map(toSession));
    snap.locks.push(...toLockRows(locks).map((l) => ({ ...l, role })));
    snap.blocking.push(...toBlockingRows(blocking).map((b) => ({ ...b, role })));
    snap.preparedTransactions.push(...toPreparedXacts(prepared).map((p) => ({ ...p, role })));
  });
  snap.hiddenBackends = toHiddenBackends(results.at(-1)!);
  return snap;
}
