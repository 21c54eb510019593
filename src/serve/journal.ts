// pgrevoke serve's journal: one JSON-lines file in <state>/serve/ (journal.jsonl; a --dry-run
// service keeps its own, journal-dry-run.jsonl, so that a rehearsal never makes a real delivery a
// "duplicate"). An accepted event is appended and fsync'd before the provider gets its 2xx; the
// worker appends the outcome when it is done. On start the file is read back: an event accepted
// and not done (a crash or SIGKILL between the 2xx and the cutoff) is handed to the worker again,
// and a redelivered key is recognised and not run twice.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openStateDir } from '../record/state-dir.js';
import { appendSafe } from '../record/safe-write.js';
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

export type JournalLine =
  | { type: 'accepted'; event: ServeEvent; roles: string[] | null }
  | { type: 'attempt'; id: string; at: string; attempt: number; error: string }
  | { type: 'done'; id: string; at: string; outcome: EventOutcome };

/** An accepted event as the journal holds it. */
export interface JournalEntry {
  event: ServeEvent;
  /** The roles it mapped to when accepted; null: unmapped. */
  roles: string[] | null;
  attempts: number;
  done: EventOutcome | null;
}

export class ServeJournal {
  private readonly byKey = new Map<string, JournalEntry>();
  private readonly byId = new Map<string, JournalEntry>();
  private chain: Promise<unknown> = Promise.resolve();
  /** The file ended in a torn line (a crash mid-append): the next append starts a line of its own. */
  private torn = false;

  private constructor(readonly file: string) {}

  /** Open (create) the journal of this mode and read it back. */
  static async open(opts: { dryRun: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<ServeJournal> {
    const dir = await openStateDir(env, 'serve');
    const j = new ServeJournal(path.join(dir, opts.dryRun ? 'journal-dry-run.jsonl' : 'journal.jsonl'));
    const text = await fs.readFile(j.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    j.torn = text.length > 0 && !text.endsWith('\n');
    for (const l of text.split('\n')) j.replay(l);
    return j;
  }

  private replay(text: string): void {
    if (!text) return;
    let line: JournalLine;
    try {
      line = JSON.parse(text) as JournalLine;
    } catch {
      return; // torn by a crash: the 2xx was never sent for it
    }
    if (line.type === 'accepted') {
      const e: JournalEntry = { event: line.event, roles: line.roles, attempts: 0, done: null };
      this.byKey.set(line.event.key, e);
      this.byId.set(line.event.id, e);
    } else {
      const e = this.byId.get(line.id);
      if (!e) return;
      if (line.type === 'attempt') e.attempts = line.attempt;
      else e.done = line.outcome;
    }
  }

  /** Appends in order, each fsync'd before the next (and before the caller's promise resolves). */
  private append(line: JournalLine): Promise<void> {
    const run = this.chain.then(async () => {
      const lead = this.torn ? '\n' : '';
      await appendSafe(this.file, `${lead}${JSON.stringify(line)}\n`);
      this.torn = false;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Accept an event: durable before this resolves. A key already in the journal is the same
   * event redelivered: nothing is appended, its entry is returned with `duplicate: true`.
   * `roles` is decided by the caller inside the same turn, so that two deliveries of one key at
   * once are one entry.
   */
  async accept(input: ServeEventInput, roles: string[] | null): Promise<{ entry: JournalEntry; duplicate: boolean }> {
    const seen = this.byKey.get(input.key);
    if (seen) {
      // the first delivery may still be being written: the duplicate's 2xx waits for it
      await this.chain;
      if (this.byKey.get(input.key) === seen) return { entry: seen, duplicate: true };
      return this.accept(input, roles);
    }
    const event: ServeEvent = { ...input, id: randomBytes(8).toString('hex'), receivedAt: new Date().toISOString() };
    const entry: JournalEntry = { event, roles, attempts: 0, done: null };
    // claimed before the append: a second delivery while this one is being written is its duplicate
    this.byKey.set(input.key, entry);
    this.byId.set(event.id, entry);
    try {
      await this.append({ type: 'accepted', event, roles });
    } catch (err) {
      this.byKey.delete(input.key);
      this.byId.delete(event.id);
      throw err;
    }
    return { entry, duplicate: false };
  }

  /** A failed attempt, kept so that a restart counts on from it. */
  async attempt(entry: JournalEntry, error: string): Promise<void> {
    entry.attempts += 1;
    await this.append({ type: 'attempt', id: entry.event.id, at: new Date().toISOString(), attempt: entry.attempts, error });
  }

  async finish(entry: JournalEntry, outcome: EventOutcome): Promise<void> {
    await this.append({ type: 'done', id: entry.event.id, at: new Date().toISOString(), outcome });
    entry.done = outcome;
  }

  /** Accepted and not done, oldest first: what the worker owes. */
  pending(): JournalEntry[] {
    return [...this.byId.values()].filter((e) => !e.done).sort((a, b) => a.event.receivedAt.localeCompare(b.event.receivedAt));
  }

  get(id: string): JournalEntry | undefined {
    return this.byId.get(id);
  }
}
