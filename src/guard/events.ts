// Where everything the guard has to say goes: events to the listener (the CLI renders them) and
// audit lines to --audit-log, written in order, one append after the other.
import { appendAudit, type AuditEntry } from '../record/audit.js';
import type { GuardListener } from './types.js';

/** The listener, made harmless: a listener's failure must not stop the guard. */
export function safeListener(listener: GuardListener): GuardListener {
  return (e) => {
    try {
      listener(e);
    } catch {
      /* said nowhere: the listener is where it would be said */
    }
  };
}

/** The audit log as a chain of appends: a tick never waits for the disk, run() and once() wait for flushed(). */
export class AuditTrail {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string | null,
    private readonly emit: GuardListener,
  ) {}

  write(entries: AuditEntry[]): void {
    const file = this.file;
    if (!file || entries.length === 0) return;
    this.chain = this.chain.then(() =>
      appendAudit(file, entries).then(
        // what appendAudit has to say (a log it had to tighten), when it says anything
        (note: string | null | void) => void (typeof note === 'string' && this.emit({ type: 'warning', node: null, message: note })),
        (err) => this.emit({ type: 'error', node: null, message: `could not write the audit log ${file}: ${(err as Error).message}` }),
      ),
    );
  }

  /** Every append asked for so far, done. */
  flushed(): Promise<void> {
    return this.chain;
  }
}
