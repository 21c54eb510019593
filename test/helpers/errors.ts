// Asserting that a call fails as a usage error (exit 2), returning the error for its message and hint.
import { expect } from 'vitest';
import { ExitCode, PgrevokeError } from '../../src/errors.js';

export function usage(fn: () => unknown): PgrevokeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PgrevokeError);
    expect((err as PgrevokeError).exitCode).toBe(ExitCode.USAGE);
    return err as PgrevokeError;
  }
  throw new Error('expected a usage error');
}
