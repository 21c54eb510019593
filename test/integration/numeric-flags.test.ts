// Numbers on the command line and in the environment, through the CLI as a user gives them: a
// connect timeout Node's timer cannot hold (2147484 s would fire after 1 ms and fail against a
// healthy server) and an empty --hidden-grace (which read as 0) are exit 2, one line naming them.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const TIMEOUT_RANGE = 'an integer from 0 to 2147483 (seconds)';

/** Exit 2 with exactly one line on stderr, and nothing on stdout. */
function oneLineUsage(r: CliResult): string {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0]!;
}

describe.each(MAJORS)('numeric flags and variables on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const env = { PGREVOKE_STATE_DIR: path.join(mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-numbers-')), 'state') };
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli([...args, '--dsn', cl.dsn()], { ...env, ...extra });
  const canLogin = async (name: string) =>
    (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [name]))[0]?.l;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE numbers_victim LOGIN PASSWORD 'pw-numbers'`);
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('--connect-timeout 2147484 and PGCONNECT_TIMEOUT=2147484 are exit 2 naming them; 2147483 connects', async () => {
    expect(oneLineUsage(await cli(['inspect', 'numbers_victim', '--connect-timeout', '2147484']))).toBe(
      `pgrevoke: error: invalid --connect-timeout: "2147484": ${TIMEOUT_RANGE}`,
    );
    expect(oneLineUsage(await cli(['inspect', 'numbers_victim'], { PGCONNECT_TIMEOUT: '2147484' }))).toBe(
      `pgrevoke: error: invalid PGCONNECT_TIMEOUT: "2147484": ${TIMEOUT_RANGE}`,
    );
    expect(oneLineUsage(await cli(['verify', 'numbers_victim', '--connect-timeout', '0x10']))).toContain(
      'invalid --connect-timeout: "0x10"',
    );
    // the largest the timer holds: the login is not cut off after 1 ms
    const ok = await cli(['inspect', 'numbers_victim', '--json', '--connect-timeout', '2147483']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveProperty('schemaVersion', 1);
  });

  it("--hidden-grace '' (once read as 0) and other non-numbers are exit 2 naming the flag, with nothing changed", async () => {
    expect(oneLineUsage(await cli(['cutoff', 'numbers_victim', '--yes', '--hidden-grace', '']))).toBe(
      'pgrevoke: error: invalid --hidden-grace: "": an integer from 0 to 3600000',
    );
    expect(oneLineUsage(await cli(['cutoff', 'numbers_victim', '--yes', '--hidden-grace', '0x10']))).toContain(
      'invalid --hidden-grace: "0x10"',
    );
    expect(oneLineUsage(await cli(['cutoff', 'numbers_victim', '--yes', '--settle-timeout', '1e1']))).toContain('invalid --settle-timeout');
    expect(oneLineUsage(await cli(['kill', '1', '--yes', '--wait-ms', '1.5']))).toContain('invalid --wait-ms: "1.5"');
    expect(oneLineUsage(await cli(['verify', 'numbers_victim', '--concurrency', '']))).toContain('invalid --concurrency: ""');
    expect(oneLineUsage(await cli(['guard', '--once', '--deny', 'numbers_victim', '--interval', '0x10']))).toContain('invalid --interval');
    expect(oneLineUsage(await cli(['inspect', 'numbers_victim', '--port', '']))).toContain('invalid --port: ""');
    expect(await canLogin('numbers_victim')).toBe(true);
  });
});
