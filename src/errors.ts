// One table of exit codes for every command, and the one error type that carries them.
import { redact } from './pg/redact.js';

export const ExitCode = {
  /** The command did what was asked: inspection ran, role contained and verified. */
  OK: 0,
  /** The command ran but found (or left) exposure, or a named session does not exist. */
  EXPOSED: 1,
  /** Usage, configuration, connection or privilege error: nothing was changed. */
  USAGE: 2,
  /** A change failed partway, or some nodes failed: the report says exactly where. */
  PARTIAL: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  exitCode?: ExitCode;
  sqlstate?: string;
  hint?: string;
  cause?: unknown;
}

/** An error meant for the operator: one readable line, a SQLSTATE where there is one, a hint. */
export class PgrevokeError extends Error {
  readonly exitCode: ExitCode;
  readonly sqlstate?: string;
  readonly hint?: string;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.name = 'PgrevokeError';
    this.exitCode = details.exitCode ?? ExitCode.USAGE;
    this.sqlstate = details.sqlstate;
    this.hint = details.hint;
  }
}

export function usageError(message: string, hint?: string): PgrevokeError {
  return new PgrevokeError(message, { exitCode: ExitCode.USAGE, hint });
}

/** An error as one line for a report: message, SQLSTATE and hint (what `pgrevoke: error:` prints). */
export function describeError(err: unknown): string {
  const e = err as { message?: string; sqlstate?: string; code?: string; hint?: string };
  const state = e.sqlstate ?? (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined);
  return redact(`${e.message ?? String(err)}${state ? ` [SQLSTATE ${state}]` : ''}${e.hint ? ` (hint: ${e.hint})` : ''}`);
}
