// pgrevoke serve's journal: one JSON-lines file in <state>/serve/ (journal.jsonl; a --dry-run
// service keeps its own, journal-dry-run.jsonl, so that a rehearsal never makes a real delivery a
// "duplicate"). An accepted event is appended and fsync'd before the provider gets its 2xx; the
// worker appends the outcome when it is done. On start the file is read back: an event accepted
// and not done (a crash or SIGKILL between the 2xx and the cutoff) is handed to the worker again,
// and a redelivered key is recognised and not run twice. Then it is compacted: rewritten
// (atomically) with the events not done and the done ones of the last `journal_keep` (7 days), whose
// keys still catch a redelivery; older keys are forgotten, so the file does not grow for ever.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { readStateText } from '../record/state-file.js';
import { openStateDir } from '../record/state-dir.js';
import { appendSafe, writeFileSafe } from '../record/safe-write.js';
import { usageError } from '../errors.js';
import { parseJournalLine, type JournalLine } from './journal-schema.js';
import type { ServeEvent, ServeEventInput } from './types.js';

import { DEFAULT_KEEP_MS, type EventOutcome, type JournalEntry, type ServeQueue } from './queue.js';

export type { EventOutcome, JournalEntry, OutcomeStatus } from './queue.js';

export type { JournalLine } from './journal-schema.js';

/** Compaction keeps it small; a file far larger than this is not ours. */
const MAX_JOURNAL_BYTES = 256 * 1024 * 1024;

/** Per entry, what compaction and the worker's timer need beside the entry itself. */
interface Kept {
  /** Its last attempt line, as read or appended. */
  attempt: JournalLine | null;
  /** Its done line. */
  done: (JournalLine & { type: 'done' }) | null;
  /** Not to be claimed before (epoch ms): a failed attempt's backoff; a restart retries at once. */
  notBefore: number;
}

export class ServeJournal implements ServeQueue {
  private readonly byKey = new Map<string, JournalEntry>();
  private readonly byId = new Map<string, JournalEntry>();
  private readonly meta = new Map<string, Kept>();
  private chain: Promise<unknown> = Promise.resolve();
  /** The file ended in a torn line (a crash mid-append): the next append starts a line of its own. */
  private torn = false;
  /** The event the worker runs (one at a time): not claimed again until it is let go. */
  private claimed: string | null = null;

  private constructor(readonly file: string) {}

  get where(): string {
    return this.file;
  }

  /**
   * Open (create) the journal of this mode, read it back, and compact it: done events whose outcome
   * is older than `keepMs` are dropped (their keys no longer catch a redelivery).
   */
  static async open(
    opts: { dryRun: boolean; keepMs?: number },
    env: NodeJS.ProcessEnv = process.env,
    now = Date.now(),
  ): Promise<ServeJournal> {
    const dir = await openStateDir(env, 'serve');
    const j = new ServeJournal(path.join(dir, opts.dryRun ? 'journal-dry-run.jsonl' : 'journal.jsonl'));
    const text =
      (await readStateText(j.file, MAX_JOURNAL_BYTES, (why) =>
        usageError(
          `the serve journal ${j.file} cannot be used: ${why}: not starting over a journal it cannot trust`,
          'move the file aside (an event it held is then not run), or give it back to this user with mode 0600',
        ),
      )) ?? '';
    j.torn = text.length > 0 && !text.endsWith('\n');
    const lines = text.split('\n');
    let read = 0;
    for (const [i, l] of lines.entries()) {
      if (!l) continue;
      const r = parseJournalLine(l);
      if ('line' in r) {
        j.replay(r.line);
        read += 1;
        // the last line with no newline after it was torn by a crash: the 2xx was never sent for it
      } else if (!(j.torn && i === lines.length - 1))
        throw usageError(
          `the serve journal ${j.file}:${i + 1} is ${r.wrong}: not starting over a journal it cannot read`,
          'fix or remove that line (an event it held is then not run), or move the file aside',
        );
    }
    await j.compact(read, now - (opts.keepMs ?? DEFAULT_KEEP_MS));
    return j;
  }

  private replay(line: JournalLine): void {
    if (line.type === 'accepted') {
      const e: JournalEntry = { event: line.event, roles: line.roles, attempts: 0, done: null };
      this.byKey.set(line.event.key, e);
      this.byId.set(line.event.id, e);
      this.meta.set(line.event.id, { attempt: null, done: null, notBefore: 0 });
      return;
    }
    const e = this.byId.get(line.id);
    const m = this.meta.get(line.id);
    if (!e || !m) return;
    if (line.type === 'attempt') {
      e.attempts = line.attempt;
      m.attempt = line;
    } else {
      e.done = line.outcome;
      m.done = line;
    }
  }

  /** The lines the journal needs now: per event kept, its acceptance, its last attempt, its outcome. */
  private keptLines(since: number): JournalLine[] {
    const out: JournalLine[] = [];
    for (const e of this.byId.values()) {
      const m = this.meta.get(e.event.id)!;
      const doneAt = m.done ? Date.parse(m.done.at) : NaN;
      // an outcome of unknown time is kept: forgetting a key too early runs a redelivery twice
      if (m.done && doneAt < since) {
        this.byId.delete(e.event.id);
        this.byKey.delete(e.event.key);
        this.meta.delete(e.event.id);
        continue;
      }
      out.push({ type: 'accepted', event: e.event, roles: e.roles });
      if (m.attempt && !m.done) out.push(m.attempt);
      if (m.done) out.push(m.done);
    }
    return out;
  }

  /** Rewrite the file (temp file, fsync, rename) when that drops something: old events, spent attempt lines, a torn line. */
  private async compact(read: number, since: number): Promise<void> {
    const kept = this.keptLines(since);
    if (kept.length === read && !this.torn) return;
    await writeFileSafe(this.file, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
    this.torn = false;
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
    this.meta.set(event.id, { attempt: null, done: null, notBefore: 0 });
    try {
      await this.append({ type: 'accepted', event, roles });
    } catch (err) {
      this.byKey.delete(input.key);
      this.byId.delete(event.id);
      this.meta.delete(event.id);
      throw err;
    }
    return { entry, duplicate: false };
  }

  async claim(): Promise<JournalEntry | null> {
    if (this.claimed) return null;
    const now = Date.now();
    const owed = this.pending();
    const next = owed.find((e, i) => this.dueAt(e) <= now && !owed.slice(0, i).some((o) => o.roles?.some((r) => e.roles?.includes(r))));
    if (!next) return null;
    this.claimed = next.event.id;
    return next;
  }

  private dueAt(e: JournalEntry): number {
    return this.meta.get(e.event.id)?.notBefore ?? 0;
  }

  private letGo(entry: JournalEntry): void {
    if (this.claimed === entry.event.id) this.claimed = null;
  }

  async attempt(entry: JournalEntry, error: string, retryInMs: number): Promise<void> {
    entry.attempts += 1;
    const m = this.meta.get(entry.event.id);
    // the backoff holds whether or not the line is written: a journal that cannot be written is
    // not hammered (a minute at least), and a restart reads what is on disk again
    if (m) m.notBefore = Date.now() + retryInMs;
    this.letGo(entry);
    const line: JournalLine = { type: 'attempt', id: entry.event.id, at: new Date().toISOString(), attempt: entry.attempts, error };
    try {
      await this.append(line);
    } catch (err) {
      if (m) m.notBefore = Math.max(m.notBefore, Date.now() + 60_000);
      throw err;
    }
    if (m) m.attempt = line;
  }

  async finish(entry: JournalEntry, outcome: EventOutcome): Promise<void> {
    const line = { type: 'done' as const, id: entry.event.id, at: new Date().toISOString(), outcome };
    try {
      await this.append(line);
    } catch (err) {
      // not done: the worker records a failed attempt (and its backoff) next
      this.letGo(entry);
      throw err;
    }
    entry.done = outcome;
    const m = this.meta.get(entry.event.id);
    if (m) m.done = line;
    this.letGo(entry);
  }

  /** Accepted and not done, oldest first: what the worker owes. */
  pending(): JournalEntry[] {
    return [...this.byId.values()].filter((e) => !e.done).sort((a, b) => a.event.receivedAt.localeCompare(b.event.receivedAt));
  }

  depth(): number {
    return this.pending().length;
  }

  /**
   * When the next claim can find something: the earliest due time of the events owed that no older
   * owed event holds back (for a shared role) and that nobody runs. One that ended already (between
   * the claim finding nothing due and this question) is due now, not dropped; a held-back event waits
   * on its holder, so its own past time never spins the worker. While one is claimed: null (claims
   * are one at a time; its attempt or outcome lets go, and the worker asks again then).
   */
  nextDue(): number | null {
    if (this.claimed) return null;
    const owed = this.pending();
    const free = owed.filter((e, i) => !owed.slice(0, i).some((o) => o.roles?.some((r) => e.roles?.includes(r))));
    return free.length ? Math.max(Date.now(), Math.min(...free.map((e) => this.dueAt(e)))) : null;
  }

  async close(): Promise<void> {
    await this.chain;
  }

  get(id: string): JournalEntry | undefined {
    return this.byId.get(id);
  }
}
