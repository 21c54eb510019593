// The rules in force: --deny, --exclude and the idle limits as given, plus the deny file's names as
// last read. The file is re-read on SIGHUP (reload) and when it changes (refresh, checked at most
// once per interval); a file that cannot be read, or holds a name that cannot be a role, keeps the
// names read before.
import { promises as fs } from 'node:fs';
import { usageError } from '../errors.js';
import { parseDenyFile } from './options.js';
import { NO_TIMEOUTS, type GuardRules } from './sql.js';
import type { GuardConfig, GuardListener } from './types.js';

/** What tells a changed file: a rename over it, a new size, a new mtime. */
function stampOf(st: { ino: number | bigint; size: number | bigint; mtimeMs: number | bigint }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

export class DenyList {
  private fileDeny: string[] = [];
  private fileStamp = '';
  private lastFileCheck = 0;
  private fileCheck: Promise<void> | null = null;
  private cached: GuardRules | null = null;

  constructor(
    private readonly cfg: GuardConfig,
    private readonly emit: GuardListener,
  ) {}

  /** The rules in force now: --deny plus the deny file as last read; the same object until the file's names change. */
  rules(): GuardRules {
    return (this.cached ??= {
      deny: [...new Set([...this.cfg.deny, ...this.fileDeny])],
      exclude: this.cfg.exclude,
      idle: this.cfg.idle ?? NO_TIMEOUTS,
      idleInTransaction: this.cfg.idleInTransaction ?? NO_TIMEOUTS,
    });
  }

  /** Read and check the whole deny file; on any problem (a usage error) the names in force stay. */
  async read(): Promise<{ added: string[]; removed: string[] }> {
    const file = this.cfg.denyFile!;
    let st: Awaited<ReturnType<typeof fs.stat>>;
    let data: Buffer;
    try {
      st = await fs.stat(file);
      data = await fs.readFile(file);
    } catch (err) {
      throw usageError(`cannot read the deny file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // a file refused is refused once: the change check must not report it again at the next tick
    this.fileStamp = stampOf(st);
    const names = parseDenyFile(data, `deny file ${file}`);
    const added = names.filter((n) => !this.fileDeny.includes(n));
    const removed = this.fileDeny.filter((n) => !names.includes(n));
    this.fileDeny = names;
    this.cached = null;
    return { added, removed };
  }

  /** Re-read the deny file now (SIGHUP). A file that cannot be read keeps the names last read. */
  async reload(source: 'signal' | 'file' = 'signal'): Promise<void> {
    if (!this.cfg.denyFile) {
      this.emit({ type: 'reloaded', source, deny: this.rules().deny.length, added: [], removed: [] });
      return;
    }
    try {
      const { added, removed } = await this.read();
      this.emit({ type: 'reloaded', source, deny: this.rules().deny.length, added, removed });
    } catch (err) {
      this.emit({ type: 'error', node: null, message: `reload refused: ${(err as Error).message}; ${this.keeping()}` });
    }
  }

  private keeping(): string {
    const shown = this.fileDeny.slice(0, 5).map((n) => JSON.stringify(n));
    if (this.fileDeny.length > shown.length) shown.push('...');
    return `keeping the ${this.fileDeny.length} name(s) read before${shown.length ? ` (${shown.join(', ')})` : ''}`;
  }

  /** At most once per interval, whatever the number of nodes: reload when the file changed. */
  refresh(): Promise<void> {
    const file = this.cfg.denyFile;
    if (!file) return Promise.resolve();
    if (this.fileCheck) return this.fileCheck;
    if (Date.now() - this.lastFileCheck < this.cfg.intervalMs) return Promise.resolve();
    this.lastFileCheck = Date.now();
    this.fileCheck = this.checkChanged(file).finally(() => {
      this.fileCheck = null;
    });
    return this.fileCheck;
  }

  private async checkChanged(file: string): Promise<void> {
    try {
      const st = await fs.stat(file);
      const stamp = stampOf(st);
      if (stamp !== this.fileStamp) {
        // a file that changed but cannot be read is reported once, not at every tick
        this.fileStamp = stamp;
        await this.reload('file');
      }
    } catch (err) {
      const stamp = `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
      if (this.fileStamp !== stamp) {
        this.fileStamp = stamp;
        this.emit({
          type: 'error',
          node: null,
          message: `cannot read the deny file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; ${this.keeping()}`,
        });
      }
    }
  }
}
