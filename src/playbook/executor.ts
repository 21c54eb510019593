// The one interface apply writes through. The real executor runs statements (each in the database
// it belongs to) and replaces files; the dry-run executor records the same statements and touches
// nothing: no ALTER, no terminate, no file write, no reload.
import type pg from 'pg';
import { sendCancel } from '../pg/cancel.js';
import { connect, type Client } from '../pg/connect.js';
import { DATA_DIRECTORY_SQL, signalBackends, type ServerHome } from '../pg/local-signal.js';
import type { ConnParams } from '../pg/conninfo.js';
import { replaceFile, restoreFile, type WriteResult } from './hba-file.js';
import type { Interrupt } from './interrupt.js';
import type { PlanStep } from './model.js';
import { STEP_LOCK_TIMEOUT_MS, type Statement } from './sql.js';

export interface Recorded {
  step: number;
  action: string;
  database: string | null;
  /** The shown form (secrets masked). */
  sql: string;
}

export interface ResultSet {
  command: string | null;
  rowCount: number | null;
  rows: Record<string, unknown>[];
}

export interface Executor {
  readonly dryRun: boolean;
  /** Every statement run (or, in a dry run, that would have run), in order. */
  readonly log: Recorded[];
  /**
   * Run statement text in the step's database (or the main connection). Without values it goes
   * through the simple protocol, so several statements with a COMMIT between them are one round
   * trip; the result has one entry per statement. A dry run returns no results.
   */
  run(step: PlanStep, stmt: Statement | string, opts?: { database?: string | null; values?: unknown[] }): Promise<ResultSet[]>;
  /** Replace a file (backup kept); `note` is what the log shows instead of the content. */
  writeFile(step: PlanStep, file: string, content: string, note: string): Promise<WriteResult | null>;
  restoreFile(step: PlanStep, file: string, backup: string, note: string): Promise<void>;
  /** SIGTERM from this host to backends pg_terminate_backend() could not reach; returns those signalled. */
  signalBackends(step: PlanStep, pids: readonly number[]): Promise<number[]>;
  close(): Promise<void>;
}

function signalNote(pids: readonly number[]): string {
  return `-- SIGTERM from this host to backend pid(s) ${pids.join(', ')} (each checked to be a child of this server's postmaster)`;
}

function toStatement(s: Statement | string): Statement {
  return typeof s === 'string' ? { sql: s, display: s } : s;
}

function normalize(res: pg.QueryResult | pg.QueryResult[]): ResultSet[] {
  const list = Array.isArray(res) ? res : [res];
  return list.map((r) => ({ command: r.command ?? null, rowCount: r.rowCount ?? null, rows: (r.rows ?? []) as Record<string, unknown>[] }));
}

export class PgExecutor implements Executor {
  readonly dryRun = false;
  readonly log: Recorded[] = [];
  private readonly others = new Map<string, Client>();

  constructor(
    private readonly params: ConnParams,
    private readonly main: Client,
    interrupt?: Interrupt,
  ) {
    // a signal cancels what the server is running for us, on every session (idle ones ignore it)
    interrupt?.onTrigger(() => void Promise.all([this.main, ...this.others.values()].map((c) => sendCancel(c))));
  }

  private async clientFor(database: string | null | undefined): Promise<Client> {
    if (!database || database === this.params.database) return this.main;
    let c = this.others.get(database);
    if (!c) {
      c = await connect(this.params, database, { lockTimeoutMs: STEP_LOCK_TIMEOUT_MS });
      this.others.set(database, c);
    }
    return c;
  }

  async run(step: PlanStep, stmt: Statement | string, opts: { database?: string | null; values?: unknown[] } = {}): Promise<ResultSet[]> {
    const s = toStatement(stmt);
    const database = opts.database === undefined ? step.database : opts.database;
    this.log.push({ step: step.index, action: step.action, database, sql: s.display });
    const client = await this.clientFor(database);
    const res = opts.values ? await client.query(s.sql, opts.values) : await client.query(s.sql);
    return normalize(res as pg.QueryResult | pg.QueryResult[]);
  }

  async writeFile(step: PlanStep, file: string, content: string, note: string): Promise<WriteResult | null> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
    return replaceFile(file, content);
  }

  async restoreFile(step: PlanStep, file: string, backup: string, note: string): Promise<void> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
    await restoreFile(file, backup);
  }

  async signalBackends(step: PlanStep, pids: readonly number[]): Promise<number[]> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: signalNote(pids) });
    const home = (await this.main.query<ServerHome>(DATA_DIRECTORY_SQL)).rows[0];
    return home ? signalBackends(pids, home) : [];
  }

  async close(): Promise<void> {
    await Promise.all([...this.others.values()].map((c) => c.end().catch(() => undefined)));
    this.others.clear();
  }
}

export class DryRunExecutor implements Executor {
  readonly dryRun = true;
  readonly log: Recorded[] = [];

  async run(step: PlanStep, stmt: Statement | string, opts: { database?: string | null } = {}): Promise<ResultSet[]> {
    const s = toStatement(stmt);
    this.log.push({
      step: step.index,
      action: step.action,
      database: opts.database === undefined ? step.database : opts.database,
      sql: s.display,
    });
    return [];
  }

  async writeFile(step: PlanStep, _file: string, _content: string, note: string): Promise<WriteResult | null> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
    return null;
  }

  async restoreFile(step: PlanStep, _file: string, _backup: string, note: string): Promise<void> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: note });
  }

  async signalBackends(step: PlanStep, pids: readonly number[]): Promise<number[]> {
    this.log.push({ step: step.index, action: step.action, database: null, sql: signalNote(pids) });
    return [];
  }

  async close(): Promise<void> {}
}
