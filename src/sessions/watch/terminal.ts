// The live view's terminal, kept thin: the alternate screen, keys, resizes, and getting the operator's
// screen back on every way out (q, Ctrl+C, SIGINT, SIGTERM, an uncaught error, process exit).
import ansiEscapes from 'ansi-escapes';
import readline from 'node:readline';
import type { WatchKey } from './keys.js';

export interface TerminalStreams {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
}

export interface TerminalHandlers {
  key(k: WatchKey): void;
  resize(): void;
  /** SIGINT or SIGTERM from outside the terminal (kill, a supervisor). */
  stop(): void;
}

export interface WatchTerminal {
  /** Keys are read: stdin is a terminal too. */
  readonly keys: boolean;
  size(): { columns: number; rows: number };
  draw(lines: readonly string[]): void;
  /** Restore the screen as it was; safe to call more than once. */
  close(): void;
}

/** A pty that reports no size (script(1) without one) is drawn at the classic 80x24. */
const sizeOf = (out: NodeJS.WriteStream) => ({ columns: out.columns || 80, rows: out.rows || 24 });

export function openTerminal(io: TerminalStreams, on: TerminalHandlers): WatchTerminal {
  const { stdin, stdout } = io;
  const keys = Boolean(stdin.isTTY);
  const onKey = (_: string | undefined, k: WatchKey | undefined) => k && on.key(k);
  const onResize = () => on.resize();
  const onSignal = () => on.stop();
  let open = true;
  const restore = () => {
    if (!open) return;
    open = false;
    // written synchronously where it can be: this also runs from 'exit', when nothing async happens any more
    stdout.write(ansiEscapes.cursorShow + ansiEscapes.exitAlternativeScreen);
    if (keys) {
      stdin.off('keypress', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
    stdout.off('resize', onResize);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', restore);
    process.off('uncaughtExceptionMonitor', restore);
  };
  stdout.write(ansiEscapes.enterAlternativeScreen + ansiEscapes.cursorHide + ansiEscapes.clearViewport);
  // before Node prints an uncaught error, so that it lands on the operator's screen, not the discarded one
  process.prependListener('uncaughtExceptionMonitor', restore);
  process.on('exit', restore);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  stdout.on('resize', onResize);
  if (keys) {
    readline.emitKeypressEvents(stdin);
    // raw: keys arrive one by one and unechoed, and Ctrl+C is a key (q's twin), not a signal
    stdin.setRawMode(true);
    stdin.on('keypress', onKey);
    stdin.resume();
  }
  return {
    keys,
    size: () => sizeOf(stdout),
    draw: (lines) => {
      if (!open) return;
      // each line placed and its old contents erased: no full clear, so no flicker; one write per frame
      const body = lines.map((l, i) => ansiEscapes.cursorTo(0, i) + ansiEscapes.eraseLine + l).join('');
      stdout.write(ansiEscapes.synchronizedOutput(body));
    },
    close: restore,
  };
}
