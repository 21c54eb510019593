// One node's part of guard's lockout: its own connection (lockout-conn.ts), its log source (over
// SQL through that connection, or --server-log FILE) started at the position saved by the last run
// (lockout-cursor.ts), and that position saved again once what was read up to it has been counted.
import path from 'node:path';
import { FileLogSource } from '../serverlog/file-source.js';
import { SqlLogSource } from '../serverlog/sql-source.js';
import { SETTINGS_SQL, type SettingsRow } from '../serverlog/sql.js';
import type { AuthFailure, AuthFailureSource, LogCursor } from '../serverlog/types.js';
import { loadCursor, saveCursor, type CursorKey } from './lockout-cursor.js';
import { LockoutConn, type OpenConn } from './lockout-conn.js';
import { ownBackends } from './lockout-own.js';
import type { GuardContext } from './state.js';
import type { GuardLockoutConfig, GuardNode } from './types.js';

/** A cursor whose lines held no failure is saved at most this often (reading such lines again counts nothing). */
export const CURSOR_SAVE_MS = 5000;

export interface Polled {
  failures: AuthFailure[];
  cursor: LogCursor | null;
}

export class LogReader {
  readonly conn: LockoutConn;
  private source: (AuthFailureSource & { close?(): Promise<void> }) | null = null;
  private key: CursorKey | null = null;
  /** The position last counted (passed to the engine), and the one on file (JSON). */
  private counted: LogCursor | null = null;
  private saved: string | null = null;
  private savedAt = 0;
  /** When its log was last read (Date.now()), and the read in flight. */
  readAt = 0;
  polling: Promise<void> | null = null;
  /** The last error said, so that a log failing the same way each time is said once. */
  failing: string | null = null;

  constructor(
    private readonly ctx: GuardContext,
    private readonly cfg: GuardLockoutConfig,
    readonly node: GuardNode,
  ) {
    this.conn = new LockoutConn(node.params, ctx.queryTimeoutMs, ctx.cfg.connect, ownBackends(node));
  }

  private get env(): NodeJS.ProcessEnv {
    return this.cfg.env ?? process.env;
  }

  /** Failures logged since the last poll, and the position after them. */
  async poll(): Promise<Polled> {
    const src = this.source ?? (this.source = await this.makeSource(await this.conn.get()));
    const failures = await src.poll();
    return { failures, cursor: src.cursor() };
  }

  /** The saved position, when it is this node's and this source's (a bad file is said once, and ignored). */
  private async resume(key: CursorKey, dir: string): Promise<LogCursor | null> {
    const { cursor, ignored } = await loadCursor(key, this.env);
    const norm = (p: string) => path.posix.normalize(p).replace(/(.)\/+$/, '$1');
    const where = !cursor
      ? null
      : this.cfg.serverLog
        ? cursor.file === this.cfg.serverLog
        : norm(path.posix.dirname(cursor.file)) === norm(dir);
    const why = ignored ?? (where === false ? `${cursor!.file} is not in the log this guard reads` : null);
    if (why) this.ctx.emit({ type: 'warning', node: this.node.name, message: `lockout: saved log position ignored: ${why}` });
    return why ? null : cursor;
  }

  private async makeSource(c: OpenConn): Promise<AuthFailureSource> {
    const key: CursorKey = {
      node: this.node.name,
      systemIdentifier: c.setup.system_identifier,
      source: this.cfg.serverLog ? `file:${this.cfg.serverLog}` : 'sql',
    };
    const cursor = await this.resume(key, c.setup.log_directory);
    this.key = key;
    this.saved = cursor ? JSON.stringify(cursor) : null;
    this.savedAt = Date.now();
    if (!this.cfg.serverLog) {
      // through whatever connection the node has now: the position outlives a reconnect
      const q = async (text: string, values?: unknown[]) => (await this.conn.get()).client.query<never>({ text, values });
      return new SqlLogSource({ query: q } as ConstructorParameters<typeof SqlLogSource>[0], { label: this.node.name, cursor });
    }
    // a file has no settings of its own: the server says how it writes it
    const s = (await c.client.query<SettingsRow>({ text: SETTINGS_SQL })).rows[0]!;
    return new FileLogSource({ file: this.cfg.serverLog, prefix: s.prefix, zone: s.zone, logHostname: s.hostname === 'on', cursor });
  }

  /**
   * What was read up to `cursor` has been counted: save it, when it moved and either lines with
   * failures were passed or CURSOR_SAVE_MS went by (flush() saves the rest, at stop).
   */
  async save(cursor: LogCursor | null, hadFailures: boolean): Promise<void> {
    if (!cursor || !this.key) return;
    this.counted = cursor;
    if (!hadFailures && Date.now() - this.savedAt < CURSOR_SAVE_MS) return;
    await this.flush();
  }

  /** Save the last position counted, if it is not saved yet. */
  async flush(): Promise<void> {
    const text = this.counted && JSON.stringify(this.counted);
    if (!this.key || !text || text === this.saved) return;
    await saveCursor(this.key, this.counted!, this.env);
    this.saved = text;
    this.savedAt = Date.now();
  }

  async close(): Promise<void> {
    await this.source?.close?.();
    await this.conn.close();
  }
}
