// pgrevoke guard as a long-running subprocess, for the integration tests: its JSON Lines, its
// stderr, signals, and a polling wait.
import { spawn, type ChildProcess } from 'node:child_process';
import { BASE_ENV, BIN } from './cli.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface GuardEventLine {
  v: number;
  event: 'kill' | 'would_kill' | 'denied';
  time: string;
  node: string;
  pid: number;
  role: string | null;
  usesysid: number;
  database: string | null;
  client: string | null;
  application: string | null;
  state: string | null;
  backendType: string | null;
  reason: string;
  detail: string;
  query: string | null;
  terminated: boolean;
  dryRun: boolean;
}

/** A prepared transaction the guard rolled back (or would have, dry run) because it blocked its tick. */
export interface GuardRollbackLine {
  v: number;
  event: 'rollback_prepared' | 'would_rollback_prepared';
  time: string;
  node: string;
  gid: string;
  role: string | null;
  usesysid: number;
  databaseOid: number;
  prepared: string | null;
  locks: string;
  reason: string;
  detail: string;
  rolledBack: boolean;
  dryRun: boolean;
}

/** `what` may be a function, so that what it shows (the guard's stderr) is read when the wait fails. */
export async function until(pred: () => boolean | Promise<boolean>, ms: number, what: string | (() => string)): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(10);
  }
}

export class GuardProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, 'guard', ...args], {
      env: BASE_ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d) => (this.stdout += d));
    this.child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  private lines(): (GuardEventLine | GuardRollbackLine)[] {
    return this.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as GuardEventLine | GuardRollbackLine);
  }

  /** The session events (kill, would_kill, denied). */
  events(): GuardEventLine[] {
    return this.lines().filter((e): e is GuardEventLine => !e.event.endsWith('rollback_prepared'));
  }

  /** The prepared-transaction events (rollback_prepared, would_rollback_prepared). */
  rollbacks(): GuardRollbackLine[] {
    return this.lines().filter((e): e is GuardRollbackLine => e.event.endsWith('rollback_prepared'));
  }

  connected(n = 1): Promise<void> {
    return until(() => (this.stderr.match(/connected as/g) ?? []).length >= n, 15_000, `guard connected\n${this.stderr}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill(signal);
    const code = await Promise.race([this.exited, sleep(15_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      throw new Error(`guard did not stop on ${signal}\n${this.stderr}`);
    }
    return code;
  }
}
