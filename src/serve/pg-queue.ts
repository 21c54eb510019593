// The shared queue (`queue: postgresql://...`): the journal as a table in a database the config
// names, so that several pgrevoke serve replicas behind a load balancer share one queue and
// PostgreSQL itself settles who runs what.
//
// - accept: INSERT ... ON CONFLICT (key) DO NOTHING, committed (autocommit) before the 2xx; a key
//   another replica has is answered as the duplicate it is.
// - claim: a lease, not a transaction held across the cutoff. A held FOR UPDATE is released only
//   when the server notices its session is gone: at once for a SIGKILLed process on a live host,
//   but after TCP keepalive (2 hours by default) for a host that lost power or its network, and
//   an idle_in_transaction_session_timeout on the queue database would end it midway. A lease
//   (lease_owner, lease_until on the server's clock, renewed every third of it while the cutoff
//   runs) runs out in `queue_lease` whatever happened to its holder, and takes one short
//   statement, not a session per event. The claim itself is one UPDATE over SELECT ... FOR
//   UPDATE SKIP LOCKED. A lease that runs out while its holder still runs (the queue database out
//   of reach longer than the lease) lets another replica run the event too: cutoffs are
//   idempotent, and the first outcome recorded stands.
// - Per-role order: never an event while an older one owed (claimed or not) shares a role.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { describeError, ExitCode, PgrevokeError } from '../errors.js';
import { resolveDsn } from '../fleet/dsn.js';
import { connect, type Client } from '../pg/connect.js';
import { describeConn, type ConnParams } from '../pg/conninfo.js';
import { redact } from '../pg/redact.js';
import * as sql from './pg-queue-sql.js';
import type { EventOutcome, JournalEntry, ServeQueue } from './queue.js';
import type { ServeEvent, ServeEventInput } from './types.js';

/** How often an idle replica looks for work another took in (or a lease that ran out). */
export const POLL_MS = 1_000;
const QUERY_TIMEOUT_MS = 15_000;
const SQLSTATE = /^[0-9A-Z]{5}$/;

interface Row {
  id: string;
  key: string;
  provider: ServeEvent['provider'];
  action: ServeEvent['action'];
  identity: ServeEvent['identity'];
  summary: string;
  roles: string[] | null;
  received_at: Date;
  attempts: number;
  outcome: EventOutcome | null;
}

function entryOf(r: Row): JournalEntry {
  const { id, key, provider, action, identity, summary } = r;
  const event: ServeEvent = { id, key, provider, action, identity, summary, receivedAt: new Date(r.received_at).toISOString() };
  return { event, roles: r.roles, attempts: r.attempts, done: r.outcome };
}

/** One connection, opened when first needed and again after it broke; every statement bounded in time. */
class Link {
  private client: Client | null = null;
  private opening: Promise<Client> | null = null;

  constructor(private readonly params: ConnParams) {}

  private get(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.opening ??= connect(this.params)
      .then((c) => {
        c.on('error', () => void this.drop(c));
        c.on('end', () => void this.drop(c));
        this.client = c;
        return c;
      })
      .finally(() => (this.opening = null));
    return this.opening;
  }

  async query<R extends object>(text: string, values: unknown[] = []): Promise<R[]> {
    const c = await this.get();
    try {
      return (await c.query<R>({ text, values, query_timeout: QUERY_TIMEOUT_MS } as never)).rows;
    } catch (err) {
      // a client-side timeout leaves the statement ahead of the next, a socket error leaves nothing: start afresh
      if (!SQLSTATE.test(String((err as { code?: unknown }).code))) await this.drop(c);
      throw err;
    }
  }

  async drop(only?: Client): Promise<void> {
    const c = this.client;
    if (!c || (only && c !== only)) return;
    this.client = null;
    await c.end().catch(() => undefined);
  }
}

export interface PgQueueOptions {
  dsn: string;
  schema: string;
  leaseMs: number;
  dryRun: boolean;
  keepMs: number;
}

export class PgQueue implements ServeQueue {
  /** This service's name on its claims: host, pid and a random part (a restarted pid is not its predecessor). */
  readonly owner = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly where: string;
  private readonly q: string;
  private seenDepth = 0;
  /** The claim this service holds and its renewal timer. */
  private held: { id: string; timer: NodeJS.Timeout } | null = null;

  private constructor(
    /** Intake's connection: an accept never waits behind the worker's statements. */
    private readonly intake: Link,
    private readonly work: Link,
    private readonly o: PgQueueOptions,
    where: string,
  ) {
    this.q = sql.queueTable(o.schema, o.dryRun).qualified;
    this.where = `${where}, claiming as ${this.owner}`;
  }

  /**
   * Connect, make the schema and table if missing, forget done events older than keepMs. A queue
   * server out of reach (or starting) is waited for, said every 30 s: exit 2 would stop systemd's
   * restarts (RestartPreventExitStatus=2) over an outage; a refused login or privilege is exit 2.
   */
  static async open(o: PgQueueOptions): Promise<PgQueue> {
    for (let tries = 0; ; tries++)
      try {
        return await PgQueue.openOnce(o);
      } catch (err) {
        const state = String((err as { sqlstate?: unknown }).sqlstate ?? '');
        if (!/^08|^57P0[34]$/.test(state)) throw err;
        if (tries % 15 === 0) process.stderr.write(`pgrevoke serve: waiting for the queue: ${describeError(err)}\n`);
        await new Promise((r) => setTimeout(r, 2_000));
      }
  }

  private static async openOnce(o: PgQueueOptions): Promise<PgQueue> {
    const params = { ...resolveDsn(o.dsn, 'queue'), applicationName: 'pgrevoke-serve-queue' };
    const t = sql.queueTable(o.schema, o.dryRun);
    // never the password: describeConn names user, host, port and database
    const where = `table ${o.schema}.${t.table} on ${describeConn(params)}`;
    const queue = new PgQueue(new Link(params), new Link(params), o, where);
    try {
      await queue.setUp(t);
      // without DELETE on the table, done rows are only kept: said, not fatal
      await queue.work.query(sql.compactSql(queue.q), [o.keepMs]).catch((err: unknown) => {
        process.stderr.write(`pgrevoke serve: done events older than journal_keep stay in the queue: ${describeError(err)}\n`);
      });
      await queue.refreshDepth();
    } catch (err) {
      await queue.close();
      const e = err as { message?: string; sqlstate?: string; code?: string; hint?: string };
      const sqlstate = e.sqlstate ?? (/^[0-9A-Z]{5}$/.test(String(e.code)) ? e.code : undefined);
      throw new PgrevokeError(redact(`the queue (${where}) cannot be used: ${e.message ?? String(err)}`), {
        sqlstate,
        hint: e.hint,
        exitCode: ExitCode.USAGE,
        cause: err,
      });
    }
    return queue;
  }

  private async setUp(t: { schema: string; table: string; qualified: string }): Promise<void> {
    const [have] = await this.work.query<{ schema: boolean; table: boolean }>(sql.EXISTS_SQL, [t.schema, t.table]);
    if (have!.schema && have!.table) return;
    await this.work.query('BEGIN');
    try {
      await this.work.query(sql.CREATE_LOCK_SQL);
      if (!have!.schema) await this.work.query(sql.createSchemaSql(t.schema));
      await this.work.query(sql.createTableSql(t));
      await this.work.query('COMMIT');
    } catch (err) {
      await this.work.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async accept(input: ServeEventInput, roles: string[] | null): Promise<{ entry: JournalEntry; duplicate: boolean }> {
    const id = randomBytes(8).toString('hex');
    const values = [id, input.key, input.provider, input.action, JSON.stringify(input.identity), input.summary, roles];
    const [made] = await this.intake.query<Row>(sql.insertSql(this.q), values);
    if (made) {
      this.seenDepth += 1;
      return { entry: entryOf(made), duplicate: false };
    }
    const [first] = await this.intake.query<Row>(sql.byKeySql(this.q), [input.key]);
    // the conflicting row is committed (the INSERT waited for it), unless it was forgotten since
    if (!first) return this.accept(input, roles);
    return { entry: entryOf(first), duplicate: true };
  }

  async claim(): Promise<JournalEntry | null> {
    if (this.held) return null;
    const [row] = await this.work.query<Row>(sql.claimSql(this.q), [this.owner, this.o.leaseMs]);
    await this.refreshDepth();
    if (!row) return null;
    const id = row.id;
    const timer = setInterval(() => void this.renew(id), Math.max(200, Math.floor(this.o.leaseMs / 3)));
    timer.unref();
    this.held = { id, timer };
    return entryOf(row);
  }

  /** Keep the lease while the cutoff runs; a lost one is said (the cutoff goes on: it is idempotent). */
  private async renew(id: string): Promise<void> {
    try {
      const kept = await this.work.query(sql.renewSql(this.q), [id, this.owner, this.o.leaseMs]);
      if (kept.length === 0 && this.held?.id === id) {
        this.letGo(id);
        process.stderr.write(`pgrevoke serve: event ${id}: the claim on it was lost (its lease ran out): another replica may run it too\n`);
      }
    } catch (err) {
      process.stderr.write(`pgrevoke serve: event ${id}: the lease could not be renewed: ${describeError(err)}\n`);
    }
  }

  private letGo(id: string): void {
    if (this.held?.id !== id) return;
    clearInterval(this.held.timer);
    this.held = null;
  }

  async attempt(entry: JournalEntry, error: string, retryInMs: number): Promise<void> {
    this.letGo(entry.event.id);
    const [row] = await this.work.query<{ attempts: number }>(sql.attemptSql(this.q), [entry.event.id, this.owner, error, retryInMs]);
    if (!row) throw new Error('the event is done or claimed by another replica (this claim ran out): its attempt is not counted');
    entry.attempts = row.attempts;
  }

  async finish(entry: JournalEntry, outcome: EventOutcome): Promise<void> {
    this.letGo(entry.event.id);
    const done = await this.work.query(sql.finishSql(this.q), [entry.event.id, this.owner, JSON.stringify(outcome), outcome.attempts]);
    entry.done = outcome;
    if (done.length) this.seenDepth = Math.max(0, this.seenDepth - 1);
  }

  private async refreshDepth(): Promise<void> {
    const [r] = await this.work.query<{ n: number }>(sql.depthSql(this.q));
    this.seenDepth = r!.n;
  }

  depth(): number {
    return this.seenDepth;
  }

  nextDue(): number {
    // another replica's event, a backoff's end, a lease run out: only the table knows
    return Date.now() + POLL_MS;
  }

  async close(): Promise<void> {
    if (this.held) this.letGo(this.held.id);
    await this.work.query(sql.releaseSql(this.q), [this.owner]).catch(() => undefined);
    await Promise.all([this.intake.drop(), this.work.drop()]);
  }
}
