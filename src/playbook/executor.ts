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

/**
 * A session of its own for one step in one database (a sql step's statements): what they change in
 * the session (a set_config(), an event trigger their DDL fires) ends with it, never reaching the
 * steps after it, which read through the main session.
 */
export interface IsolatedSession {
  /** As Executor.run, on this session: logged; a dry run runs nothing. */
  run(stmt: Statement | string): Promise<ResultSet[]>;
  /** Session setup or a read-only look-up, not one of the step's statements: not logged; a dry run runs none and gets no rows. */
  setup(sql: string): Promise<ResultSet[]>;
  close(): Promise<void>;
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
  /** A new session in `database` for `step` alone (not the main or shared ones); the caller closes it when the step ends. */
  isolated(step: PlanStep, database: string): Promise<IsolatedSession>;
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

/** A session that runs through `exec.run` in `database` (logged as that is): the dry run's, and test stand-ins'. */
export function loggedSession(
  exec: Executor,
  step: PlanStep,
  database: string,
  setup: (sql: string) => Promise<ResultSet[]> = async () => [],
): IsolatedSession {
  return { run: (stmt) => exec.run(step, stmt, { database }), setup, close: async () => undefined };
}

function normalize(res: pg.QueryResult | pg.QueryResult[]): ResultSet[] {
  const list = Array.isArray(res) ? res : [res];
  return list.map((r) => ({ command: r.command ?? null, rowCount: r.rowCount ?? null, rows: (r.rows ?? []) as Record<string, unknown>[] }));
}

export class PgExecutor implements Executor {
  readonly dryRun = false;
  readonly log: Recorded[] = [];
  private readonly others = new Map<string, Client>();
  private readonly isolatedOpen = new Set<Client>();

  constructor(
    private readonly params: ConnParams,
    private readonly main: Client,
    interrupt?: Interrupt,
  ) {
    // a signal cancels what the server is running for us, on every session (idle ones ignore it)
    interrupt?.onTrigger(() => void Promise.all([this.main, ...this.others.values(), ...this.isolatedOpen].map((c) => sendCancel(c))));
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

  async isolated(step: PlanStep, database: string): Promise<IsolatedSession> {
    const client = await connect(this.params, database, { lockTimeoutMs: STEP_LOCK_TIMEOUT_MS });
    this.isolatedOpen.add(client);
    return {
      run: async (stmt) => {
        const s = toStatement(stmt);
        this.log.push({ step: step.index, action: step.action, database, sql: s.display });
        return normalize((await client.query(s.sql)) as pg.QueryResult | pg.QueryResult[]);
      },
      setup: async (sql) => normalize((await client.query(sql)) as pg.QueryResult | pg.QueryResult[]),
      close: async () => {
        this.isolatedOpen.delete(client);
        await client.end().catch(() => undefined);
      },
    };
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
    await Promise.all([...this.others.values(), ...this.isolatedOpen].map((c) => c.end().catch(() => undefined)));
    this.others.clear();
    this.isolatedOpen.clear();
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

  async isolated(step: PlanStep, database: string): Promise<IsolatedSession> {
    return loggedSession(this, step, database);
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
