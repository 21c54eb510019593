// How output behaves, decided once: JSON or text, color, interactivity, progress.
// In JSON mode stdout carries exactly one document; everything human goes to stderr.
import type { Writable } from 'node:stream';
import { Chalk, type ChalkInstance } from 'chalk';
import { setTableLayout } from './report/layout.js';

export interface OutputOptions {
  json?: boolean;
  color?: boolean;
  debug?: boolean;
  /** --wide: tables show every column and every value whole, whatever the terminal width. */
  wide?: boolean;
}

/**
 * Every global flag as commander hands it to a command. It lives here, beside the output options it
 * extends, rather than in cli.ts: commands import it, and cli.ts imports the commands.
 */
export interface GlobalOptions extends OutputOptions {
  dsn?: string;
  host?: string;
  port?: string;
  username?: string;
  dbname?: string;
  connectTimeout?: string;
  /** -W (true) or -w (false): whether to ask for the operator's password; never a password itself. */
  password?: boolean;
}

export interface Progress {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  /** End with `text` after `symbol` (a spinner's line becomes it; plain output prints it). */
  persist(symbol: string, text: string): void;
  stop(): void;
}

/**
 * The width tables fit: COLUMNS when it is a positive integer (as psql uses it), else the terminal's;
 * null when stdout is not a terminal (piped tables keep every column) or carries JSON. A COLUMNS that
 * is not a number is the shell's business, not a mistake to stop an incident for: it is ignored.
 */
function tableColumns(stdout: Writable & { isTTY?: boolean; columns?: number }, env: NodeJS.ProcessEnv, json: boolean): number | null {
  if (json || !stdout.isTTY) return null;
  const fromEnv = /^[1-9][0-9]{0,4}$/.test(env.COLUMNS ?? '') ? Number(env.COLUMNS) : 0;
  const columns = fromEnv || (stdout.columns ?? 0);
  return columns > 0 ? columns : null;
}

export class Context {
  readonly json: boolean;
  readonly color: boolean;
  readonly interactive: boolean;
  readonly debug: boolean;
  readonly c: ChalkInstance;
  /** The terminal width tables are fitted to; null: not fitted (piped, JSON). */
  readonly columns: number | null;
  readonly wide: boolean;

  constructor(
    opts: OutputOptions = {},
    readonly stdout: Writable & { isTTY?: boolean } = process.stdout,
    readonly stderr: Writable & { isTTY?: boolean } = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.json = Boolean(opts.json);
    this.debug = Boolean(opts.debug);
    const ci = Boolean(env.CI) && env.CI !== 'false';
    this.interactive = Boolean(process.stdin.isTTY && stderr.isTTY) && !ci;
    const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
    this.color = opts.color !== false && !noColor && !this.json && Boolean(stdout.isTTY) && env.TERM !== 'dumb';
    this.c = new Chalk({ level: this.color ? 1 : 0 });
    this.wide = Boolean(opts.wide);
    this.columns = tableColumns(stdout, env, this.json);
    setTableLayout({ columns: this.columns, wide: this.wide });
  }

  /** A line of the command's main output (text mode). */
  out(text = ''): void {
    this.stdout.write(text + '\n');
  }

  /** Human-facing notes: on stderr so that stdout stays machine-readable. */
  note(text: string): void {
    this.stderr.write(text + '\n');
  }

  printJson(doc: unknown): void {
    // no masking over the document: secrets are kept out at their sources (src/pg/redact.ts)
    this.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  }

  /** The width of stderr's terminal (0: none, or a pty that reports no size). */
  get stderrColumns(): number {
    return (this.stderr as { columns?: number }).columns ?? 0;
  }

  /** Whether progress shows as spinners redrawn in place: an interactive terminal with a width, not JSON. */
  get spins(): boolean {
    // ora needs a terminal width to redraw in place; a pty that reports 0 columns (script(1) without a
    // size) makes it erase line after line forever, so such a terminal gets plain lines instead.
    return this.interactive && !this.json && Boolean(this.stderr.isTTY) && this.stderrColumns > 0;
  }

  private ora: Promise<typeof import('ora').default> | null = null;

  /** Load the spinner library ahead, while the caller waits on the network: its first spinner then delays nothing. */
  preloadProgress(): void {
    if (this.spins) this.ora ??= import('ora').then((m) => m.default);
  }

  /** A spinner on an interactive terminal; plain stderr lines otherwise (never in JSON mode). */
  async progress(text: string): Promise<Progress> {
    if (this.spins) {
      const ora = await (this.ora ??= import('ora').then((m) => m.default));
      const spinner = ora({ text, stream: this.stderr, color: this.color ? 'cyan' : false, isEnabled: true }).start();
      return {
        update: (t) => (spinner.text = t),
        succeed: (t) => spinner.succeed(t),
        fail: (t) => spinner.fail(t),
        persist: (symbol, t) => spinner.stopAndPersist({ symbol, text: t }),
        stop: () => spinner.stop(),
      };
    }
    const quiet = this.json;
    return {
      update: () => undefined,
      succeed: (t) => !quiet && this.note(t),
      fail: (t) => !quiet && this.note(t),
      persist: (symbol, t) => !quiet && this.note(`${symbol} ${t}`),
      stop: () => undefined,
    };
  }
}
