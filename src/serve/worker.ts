// pgrevoke serve's worker: takes the journal's accepted events one at a time (cutoffs of one
// service never race each other for pg_hba.conf or a role's row), runs each event's cutoff with
// the configured playbook on every target (--yes semantics: nobody is at a terminal), or undoes it
// on reactivation, and appends the outcome to the journal. A failed attempt (a node down, a lock
// held past the cutoff's retries) is retried with backoff; the journal counts the attempts, so a
// restart goes on counting.
import { ExitCode, describeError } from '../errors.js';
import type { AuditEntry } from '../record/audit.js';
import type { FleetCutoffReport } from '../record/fleet-report.js';
import type { NodeRefusal } from '../playbook/cutoff.js';
import { outcomeLine, serveLine, tagged, type AuditBase } from './audit.js';
import type { ServeConfig } from './config.js';
import type { EventOutcome, JournalEntry, OutcomeStatus, ServeQueue } from './queue.js';
import { reactivate } from './reactivate.js';
import { addOwnCutoff, ownCutoffs } from './own-cutoffs.js';
import { Interrupt } from '../playbook/interrupt.js';

/**
 * Attempts before a reactivation is given up on (recorded `failed`): about 10 minutes of backoff. A
 * deactivation never is: the provider has had its 2xx (a SCIM user is stored inactive, so no resend
 * comes), and a node back from a long outage must still lose the role's LOGIN.
 */
export const MAX_ATTEMPTS = 12;
/** How soon the loop looks again at events owed when the journal names no time for them. */
const OWED_POLL_MS = 1_000;
/** The wait after the attempt-th failed attempt: 1 s doubling to 60 s, then every 60 s. */
export const backoffMs = (attempt: number) => Math.min(60_000, 500 * 2 ** attempt);

/** What GET /status shows. */
export interface ServeStatus {
  lastEvent: { id: string; provider: string; action: string; receivedAt: string; status: OutcomeStatus | 'pending' } | null;
  /** A failure: an event's cutoff that failed, was refused or left exposure; the journal or audit log not written. */
  lastError: { at: string; event: string | null; message: string } | null;
  /** Not an error: the last identity no rule maps (acknowledged, nothing done, flagged). */
  lastUnmapped: { at: string; event: string; identity: string } | null;
}

export interface WorkerDeps {
  journal: ServeQueue;
  /** The config in force (SIGHUP may replace it between two events). */
  config: () => ServeConfig;
  dryRun: boolean;
  audit: (entries: AuditEntry[]) => Promise<void>;
  auditBase: () => AuditBase;
  log: (line: string) => void;
  status: ServeStatus;
  /** The wait after a failed attempt (the tests' short one); default backoffMs. */
  backoffMs?: (attempt: number) => number;
}

/** An attempt that did not get there: kept pending, retried. */
class Retry extends Error {}

export class Worker {
  private running: Promise<void> | null = null;
  private stopping = false;
  private wake: NodeJS.Timeout | null = null;
  /** Kicked while the loop ran: look again once it ends (an event accepted while it was finishing). */
  private again = false;
  /** The running event's interrupt: a second SIGTERM or the drain timeout cancels its cutoff. */
  private current: Interrupt | null = null;

  constructor(private readonly d: WorkerDeps) {}

  /** Events accepted and not done (the running one included). */
  get depth(): number {
    return this.d.journal.depth();
  }

  /** Look at the journal again (a new event, a backoff ended): starts the loop unless it runs. */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.again = false;
    let broke = false;
    this.running = this.loop()
      .catch((err: unknown) => {
        broke = true;
        // not an event's failure (those are journaled): the loop itself; the next kick starts it again
        this.d.status.lastError = { at: new Date().toISOString(), event: null, message: describeError(err) };
        this.d.log(`pgrevoke serve: the worker stopped on an error: ${describeError(err)}`);
      })
      .finally(() => {
        this.running = null;
        if (broke) {
          if (!this.stopping) (this.wake = setTimeout(() => this.kick(), 5_000)).unref();
          return;
        }
        if (!this.stopping && this.again) this.kick();
      });
  }

  /**
   * Stop taking events; resolves once the running one is done (SIGTERM's drain): its cutoff
   * finishes and its outcome is journaled. Past `timeoutMs` the cutoff is cancelled (cancel()).
   */
  async drain(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.wake) clearTimeout(this.wake);
    const timer = setTimeout(() => this.cancel(`the drain timeout (${timeoutMs / 1000} s)`), timeoutMs);
    try {
      await this.running;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Cancel the running cutoff as a signal cancels `pgrevoke cutoff`: its statement is cancelled,
   * the walk stops, the attempt is journaled and the event stays owed for the next start. A
   * restore (reactivation) is not cancelled: its statements are bounded by their lock timeouts.
   */
  cancel(why: string): void {
    const run = this.current;
    if (!this.running) return;
    if (!run) return this.d.log(`pgrevoke serve: ${why}: the running event is not a cutoff and runs to its end`);
    if (run.interrupted) return;
    this.d.log(`pgrevoke serve: ${why}: cancelling the running cutoff (the event stays in the journal for the next start)`);
    run.trigger(why);
  }

  /** The journal's claim (the oldest event due, never ahead of an older one owed for one of its roles), one at a time. */
  private async loop(): Promise<void> {
    for (let next = await this.d.journal.claim(); next; next = this.stopping ? null : await this.d.journal.claim())
      await this.process(next);
    this.schedule();
  }

  /**
   * The journal says when to look again (a backoff's end, an overdue one as now; the shared queue:
   * its poll). Events owed with no time named (one claimed elsewhere, one held back by an older
   * event) are looked at again in a second, so no owed event waits for the next accepted one.
   */
  private schedule(): void {
    if (this.wake) clearTimeout(this.wake);
    this.wake = null;
    const due = this.d.journal.nextDue() ?? (this.depth > 0 ? Date.now() + OWED_POLL_MS : null);
    if (this.stopping || due === null) return;
    this.wake = setTimeout(() => this.kick(), Math.max(0, due - Date.now()));
    this.wake.unref();
  }

  private async process(entry: JournalEntry): Promise<void> {
    const { event } = entry;
    try {
      const outcome = await this.attempt(entry);
      await this.d.journal.finish(entry, outcome);
      this.d.status.lastEvent = { ...this.summaryOf(entry), status: outcome.status };
      if (outcome.status === 'exposed' || outcome.error)
        this.d.status.lastError = {
          at: new Date().toISOString(),
          event: event.id,
          message: outcome.error ?? outcome.detail ?? outcome.status,
        };
      this.d.log(
        `pgrevoke serve: event ${event.id} (${event.provider} ${event.action}): ${outcome.status}${outcome.detail ? `: ${outcome.detail}` : ''}`,
      );
    } catch (err) {
      await this.failed(entry, err);
    }
  }

  private summaryOf(entry: JournalEntry) {
    const { id, provider, action, receivedAt } = entry.event;
    return { id, provider, action, receivedAt };
  }

  private backoff(attempt: number): number {
    return (this.d.backoffMs ?? backoffMs)(attempt);
  }

  /** A failed attempt: recorded, retried later; a reactivation's last one makes it done as `failed`. */
  private async failed(entry: JournalEntry, err: unknown): Promise<void> {
    const message = describeError(err);
    const { event } = entry;
    this.d.status.lastError = { at: new Date().toISOString(), event: event.id, message };
    try {
      await this.d.journal.attempt(entry, message, this.backoff(entry.attempts + 1));
      const last = entry.event.action === 'reactivate' && entry.attempts >= MAX_ATTEMPTS;
      // a Retry's attempt has its line already (with the cutoff's detail)
      if (last || !(err instanceof Retry))
        await this.auditSafe([outcomeLine(this.d.auditBase(), event, last ? 'failed' : 'retry', `attempt ${entry.attempts}: ${message}`)]);
      if (last) {
        await this.d.journal.finish(entry, { status: 'failed', records: [], detail: null, error: message, attempts: entry.attempts });
        this.d.status.lastEvent = { ...this.summaryOf(entry), status: 'failed' };
        this.d.log(`pgrevoke serve: event ${event.id}: failed after ${entry.attempts} attempts, giving up: ${message}`);
        return;
      }
      const wait = this.backoff(entry.attempts);
      this.d.log(`pgrevoke serve: event ${event.id}: attempt ${entry.attempts} failed (${message}); again in ${Math.round(wait / 1000)} s`);
    } catch (journalErr) {
      // the journal cannot be written: it keeps the event pending (and backs off), a restart reads it again
      this.d.log(`pgrevoke serve: event ${event.id}: the journal could not be written (${describeError(journalErr)})`);
    }
  }

  private async auditSafe(entries: AuditEntry[]): Promise<void> {
    await this.d.audit(entries).catch((err: unknown) => {
      const message = `the audit log could not be written: ${describeError(err)}`;
      this.d.status.lastError = { at: new Date().toISOString(), event: null, message };
      this.d.log(`pgrevoke serve: ${message}`);
    });
  }

  private async attempt(entry: JournalEntry): Promise<EventOutcome> {
    const base = this.d.auditBase();
    const { event } = entry;
    const attempts = entry.attempts + 1;
    if (!entry.roles) return { status: 'unmapped', records: [], detail: null, error: null, attempts };
    if (event.action === 'reactivate') {
      const cfg = this.d.config();
      const own = await ownCutoffs(event.identity, this.d.dryRun);
      const r = await reactivate(entry.roles, cfg, { dryRun: this.d.dryRun, log: this.d.log, own });
      await this.auditSafe(r.roles.map((x) => outcomeLine(base, event, x.status, x.detail, x.role)));
      if (r.retry) throw new Retry(r.retry);
      return {
        status: r.status,
        records: r.records,
        detail: r.roles.map((x) => `${x.role}: ${x.status}`).join('; '),
        error: null,
        attempts,
      };
    }
    const { report, refusals } = await this.cutoff(entry);
    // before the outcome is journaled: the reactivation restores only what this identity's deactivations wrote
    if (report.record) await addOwnCutoff(event, report.record, this.d.dryRun);
    const { auditEntries } = await import('../record/cutoff-audit.js');
    const nodeReports = report.nodes.flatMap((n) => (n.report ? [n.report] : []));
    const status = statusOf(report, refusals);
    // a dry run's plan: the steps per node; and, as cutoff --dry-run, no per-step audit lines
    const planned = (n: FleetCutoffReport['nodes'][number]) =>
      report.dryRun && n.report ? ` (would run ${n.report.steps.map((x) => x.action).join(', ')})` : '';
    const detail = report.nodes.map((n) => `${n.node}: ${n.status}${planned(n)}${n.error ? ` (${n.error})` : ''}`).join('; ');
    const steps = report.dryRun ? [] : nodeReports.flatMap((r) => auditEntries(r, report.reasonText));
    const recorded = `${detail}${report.record ? `; record ${report.record}` : ''}`;
    const why = refusals.map((r) => `${r.node}: ${r.reason}`).join('; ');
    await this.auditSafe([
      ...tagged(base, event, steps),
      status === 'refused'
        ? serveLine(base, event, {
            action: 'serve_cutoff',
            result: 'refused',
            detail: `refused: ${why}; ${recorded}`,
            target: entry.roles.join(','),
          })
        : outcomeLine(base, event, status, recorded, entry.roles.join(',')),
    ]);
    if (status === 'retry') throw new Retry(`not every node was cut off: ${detail}`);
    // a refusal is final: the same cutoff would be refused again (the journal has no status of its own for it yet)
    if (status === 'refused')
      return { status: 'failed', records: report.record ? [report.record] : [], detail, error: `refused: ${why}`, attempts };
    return {
      status,
      records: report.record ? [report.record] : [],
      detail,
      error: status === 'exposed' ? `exposure remains: ${report.exposure.join('; ')}` : null,
      attempts,
    };
  }

  /**
   * runCutoff over every target as a fleet (a node without the role, or down, is its section, not
   * the end), under the worker's interrupt: serve owns SIGTERM, so the drain lets the cutoff finish.
   */
  private async cutoff(entry: JournalEntry): Promise<{ report: FleetCutoffReport; refusals: NodeRefusal[] }> {
    const cfg = this.d.config();
    const { runCutoff } = await import('../playbook/cutoff.js');
    const base = this.d.auditBase();
    const interrupt = (this.current = new Interrupt());
    const outcome = await runCutoff(
      {
        input: { roles: entry.roles!, reassignTo: cfg.reassignTo },
        playbook: cfg.playbookName,
        targets: cfg.targets.nodes,
        pgbouncers: cfg.targets.pgbouncers,
        fleet: true,
        dryRun: this.d.dryRun,
        reason: `pgrevoke serve: ${entry.event.provider} event ${entry.event.id}: ${entry.event.summary}`,
        killPool: false,
        concurrency: 16,
        operator: { osUser: base.osUser, host: base.host },
      },
      { confirm: null, note: this.d.log, progress: this.d.log, interrupt },
    ).finally(() => (this.current = null));
    // confirm is null and the run is a fleet: neither a prompt to decline nor a single node's refusal
    if (outcome.kind !== 'report' || !('nodes' in outcome.report)) throw new Error(`unexpected cutoff outcome ${outcome.kind}`);
    return { report: outcome.report, refusals: outcome.refusals ?? [] };
  }
}

/**
 * The event's outcome from the fleet report: a node not cut off (down, failed, partway) is a
 * retry; else a node refused before any change (a role that must not be cut off, a privilege the
 * service lacks) makes it `refused`, final.
 */
function statusOf(r: FleetCutoffReport, refusals: NodeRefusal[]): OutcomeStatus | 'retry' | 'refused' {
  const refused = new Set(refusals.map((x) => x.node));
  const open = r.nodes.filter((n) => !refused.has(n.node)).map((n) => n.status);
  if (open.some((x) => x === 'unreachable' || x === 'failed' || x === 'partial' || x === 'refused')) return 'retry';
  if (refused.size) return 'refused';
  const s = r.nodes.map((n) => n.status);
  if (s.every((x) => x === 'absent')) return 'absent';
  if (r.dryRun) return 'planned';
  if (s.some((x) => x === 'exposed') || r.exitCode === ExitCode.EXPOSED) return 'exposed';
  return 'contained';
}
