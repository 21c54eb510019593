// What a full-screen program on a pseudo-terminal shows, as a person sees it: the CLI's byte stream fed
// through a real terminal emulator (xterm.js, headless). The raw stream of an alternate-screen app is
// every frame ever drawn, cursor moves and all; only an emulator says what is on the screen now.
import xterm from '@xterm/headless';
import type { TerminalRun } from './cli.js';
import { waitFor } from './wait.js';

export class Screen {
  private readonly term: InstanceType<typeof xterm.Terminal>;
  private fed = 0;

  constructor(
    private readonly run: TerminalRun,
    columns: number,
    rows: number,
  ) {
    this.term = new xterm.Terminal({ cols: columns, rows, allowProposedApi: true });
  }

  /** The screen's lines now (trailing blanks trimmed), after everything the CLI printed so far. */
  async lines(): Promise<string[]> {
    const raw = this.run.screen();
    const chunk = raw.slice(this.fed);
    this.fed = raw.length;
    await new Promise<void>((resolve) => this.term.write(chunk, resolve));
    const b = this.term.buffer.active;
    return Array.from({ length: this.term.rows }, (_, i) => b.getLine(b.viewportY + i)?.translateToString(true) ?? '');
  }

  /** Whether the alternate screen is showing (a full-screen program), not the primary one. */
  get alternate(): boolean {
    return this.term.buffer.active.type === 'alternate';
  }

  /** Lines scrolled off the top of the primary screen: a program that overflows the screen leaves some. */
  get scrollback(): number {
    return this.term.buffer.normal.baseY;
  }

  /** Resize the emulator and the pty together, as a window resize does. */
  async resize(columns: number, rows: number): Promise<void> {
    await this.lines();
    this.term.resize(columns, rows);
    this.run.resize(columns, rows);
  }

  /** The first screen for which `ok` holds; fails naming `what` and showing the last screen. */
  async until(what: string, ok: (lines: string[]) => boolean, ms = 15_000): Promise<string[]> {
    let last: string[] = [];
    try {
      return await waitFor(async () => ok((last = await this.lines())) && last, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen:\n${last.join('\n')}`, { cause: err });
    }
  }
}
