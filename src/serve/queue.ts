// What pgrevoke serve's intake and worker ask of a journal, and the two that answer it: the local
// one (journal.ts: <state>/serve/journal.jsonl, the default) and the shared one (pg-queue.ts: a
// table in the database `queue:` names, so that several replicas behind a load balancer share one
// queue). The intake and the worker use only this interface; queue-open.ts opens the one the config
// names.
import type { ServeEvent, ServeEventInput } from './types.js';

/** What became of an event (stable strings: /status and the audit lines use them). */
export type OutcomeStatus =
  /** deactivate: the roles are contained on every node that has them */
  | 'contained'
  /** deactivate: the cutoff ran, and exposure remains (verify failed) */
  | 'exposed'
  /** deactivate: no target has any of the roles */
  | 'absent'
  /** the identity maps to no role: acknowledged, nothing done, flagged */
  | 'unmapped'
  /** --dry-run: planned, nothing changed */
  | 'planned'
  /** reactivate: restored from the cutoff's record */
  | 'restored'
  /** reactivate: on_reactivate is ignore */
  | 'ignored'
  /** reactivate: no cutoff record a restore has not used yet */
  | 'nothing_to_restore'
  /** reactivate: the cutoff dropped the role (offboarding): nothing can be undone */
  | 'not_restorable'
  /** gave up after the last attempt (see `error`) */
  | 'failed';

export interface EventOutcome {
  status: OutcomeStatus;
  /** The cutoff records the event's cutoff wrote (one per run), and the records a restore used. */
  records: string[];
  /** Per role, what happened (restore), or per node (cutoff): short, secret-free. */
  detail: string | null;
  error: string | null;
  attempts: number;
}

/** An accepted event as the journal holds it. */
export interface JournalEntry {
  event: ServeEvent;
  /** The roles it mapped to when accepted; null: unmapped. */
  roles: string[] | null;
  attempts: number;
  done: EventOutcome | null;
}

export interface ServeQueue {
  /** Where the events are kept, for the log (a file, or a table and its server; never a password). */
  readonly where: string;
  /**
   * Accept an event: durable (fsync'd, or committed) before this resolves. A key the journal has is
   * the same event redelivered: nothing is added, the first delivery's entry comes back with
   * `duplicate: true`.
   */
  accept(input: ServeEventInput, roles: string[] | null): Promise<{ entry: JournalEntry; duplicate: boolean }>;
  /**
   * The oldest event due now that nobody runs, claimed for this service; never one behind an older
   * event still owed for one of its roles (a reactivation must not overtake the deactivation it
   * undoes while that waits out a backoff). null: nothing to run now.
   */
  claim(): Promise<JournalEntry | null>;
  /** A failed attempt: counted (a restart or another replica counts on), the claim let go, due again in `retryInMs`. */
  attempt(entry: JournalEntry, error: string, retryInMs: number): Promise<void>;
  /** The outcome: the event is done (the first outcome recorded stands). */
  finish(entry: JournalEntry, outcome: EventOutcome): Promise<void>;
  /** Events accepted and not done, as last seen (GET /status, the start and stop lines). */
  depth(): number;
  /** When to look again (epoch ms) with nothing claimable now; null: only a new event can bring work. */
  nextDue(): number | null;
  /** Let go of claims held (another replica takes them at once) and close. */
  close(): Promise<void>;
}

/** The retention of done events' keys (redelivery detection), `journal_keep`: 7 days. */
export const DEFAULT_KEEP_MS = 7 * 86_400_000;
