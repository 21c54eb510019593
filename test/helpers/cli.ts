// Run the built CLI as a subprocess, the way a user does, and capture stdout, stderr and exit code.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/pgrevoke.js');

/**
 * The environment every CLI run starts from: a state directory of this test process's own, so that
 * cutoff records of one run never meet another's (or the operator's in $HOME); a test's env wins.
 */
export const BASE_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  NO_COLOR: '1',
  PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-test-state-')),
};

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  stdout(): string;
  stderr(): string;
  /** Send a signal, as a terminal's Ctrl+C (SIGINT) or a supervisor (SIGTERM) would. */
  signal(sig: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/** Start the CLI with piped stdio (not a terminal), stdin given `input` and closed; killed after `timeoutMs`. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { timeoutMs?: number; input?: string } = {}): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...BASE_ENV, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  child.stdin.end(opts.input ?? '');
  return { stdout: () => stdout, stderr: () => stderr, signal: (sig) => child.kill(sig), exited };
}

export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  const run = startCli(args, env, opts);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

export interface TerminalRun {
  /** Everything the CLI printed so far (stdout and stderr share the terminal). */
  screen(): string;
  /** Type on the terminal: '\x03' is Ctrl+C (SIGINT for the CLI). */
  type(keys: string): void;
  /** Resize the terminal, as a window does: the CLI gets SIGWINCH and the new size. */
  resize(columns: number, rows: number): void;
  /** Send the CLI a signal from outside the terminal (kill, a supervisor). */
  signal(sig: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/** The process script(1) runs (its child, as the shell execs the CLI). */
function childOf(ppid: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) return Number(d);
    } catch {
      /* gone meanwhile */
    }
  }
  return undefined;
}

/**
 * Start the CLI on a pseudo-terminal (script(1): stdin, stdout and stderr are TTYs, as for an
 * operator), `columns` x `rows` when given (a pty script(1) opens otherwise reports 0x0). Killed after `timeoutMs`.
 */
export function startOnTerminal(args: string[], timeoutMs = 60_000, size: { columns?: number; rows?: number } = {}): TerminalRun {
  const sh = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
  const stty =
    size.columns || size.rows ? `stty${size.columns ? ` cols ${size.columns}` : ''}${size.rows ? ` rows ${size.rows}` : ''}; ` : '';
  // exec: no shell in between, which would itself react to the terminal's signals
  const cmd = stty + ['exec', ...[process.execPath, BIN, ...args].map(sh)].join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
    env: { ...BASE_ENV, TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  // decoded as a stream: a character split across two reads stays one character
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => (screen += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  const cli = () => {
    const pid = childOf(child.pid!);
    if (pid === undefined) throw new Error('the CLI is not running on the terminal');
    return pid;
  };
  return {
    screen: () => screen,
    type: (keys) => child.stdin.write(keys),
    // TIOCSWINSZ on the pty: the kernel signals SIGWINCH to the terminal's foreground process group
    resize: (columns, rows) =>
      execFileSync('stty', ['-F', readlinkSync(`/proc/${cli()}/fd/0`), 'cols', String(columns), 'rows', String(rows)]),
    signal: (sig) => process.kill(cli(), sig),
    exited,
  };
}

/** Run the CLI on a pseudo-terminal; when its "(y/N)" prompt shows, type `answer` (e.g. 'n\r'). */
export async function runOnTerminal(args: string[], answer: string, timeoutMs = 60_000): Promise<{ code: number | null; screen: string }> {
  const t = startOnTerminal(args, timeoutMs);
  let answered = false;
  const poll = setInterval(() => {
    if (!answered && t.screen().includes('(y/N)')) {
      answered = true;
      t.type(answer);
    }
  }, 20);
  try {
    const code = await t.exited;
    return { code, screen: t.screen() };
  } finally {
    clearInterval(poll);
  }
}

/** stdout as the one JSON document `--json` promises, or an error showing what was printed instead. */
export function jsonDoc<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}
