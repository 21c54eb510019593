// `pgrevoke ... | head -1`: the reader goes away before the output ends. Like psql, pgrevoke stops
// writing and exits normally: no stack trace, and (for a cutoff) no run abandoned half way.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';

/** Run with the read end of its stdout closed before it writes anything; resolves with stderr and the exit code. */
function readerGone(args: string[]): Promise<{ stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stderr: err, code }));
  });
}

describe('stdout closed early (a pager, head)', () => {
  it.each([['inspect --help'], ['--help'], ['cutoff --help'], ['--version']])('pgrevoke %s: exit 0, nothing on stderr', async (cmd) => {
    const r = await readerGone(cmd.split(' '));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
