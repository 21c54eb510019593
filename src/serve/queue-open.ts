// Opening the journal the serve config names: the local one by default, the shared queue with
// `queue:`; the shared queue's module (and the pg driver with it) is loaded only when named.
import type { ServeQueue } from './queue.js';

export interface QueueOptions {
  dryRun: boolean;
  /** How long a done event's key is kept for redelivery detection (journal_keep). */
  keepMs: number;
  /** `queue:` (a DSN) and its options; null: the local journal. */
  shared: { dsn: string; schema: string; leaseMs: number } | null;
}

export async function openQueue(o: QueueOptions, env: NodeJS.ProcessEnv = process.env): Promise<ServeQueue> {
  if (!o.shared) {
    const { ServeJournal } = await import('./journal.js');
    return ServeJournal.open({ dryRun: o.dryRun, keepMs: o.keepMs }, env);
  }
  const { PgQueue } = await import('./pg-queue.js');
  return PgQueue.open({ ...o.shared, dryRun: o.dryRun, keepMs: o.keepMs });
}
