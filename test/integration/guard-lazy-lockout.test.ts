// guard loads the lockout engine and the server log reader (src/lockout, src/serverlog) only when a
// lockout flag is given: the built CLI runs under a module hook that records every module Node
// loads, and the bundle's chunks loaded are searched for the engine's and the readers' classes.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_ENV, BIN } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';

// as esbuild writes a class it bundles
const MARKERS = ['LockoutEngine = class', 'SqlLogSource = class', 'FileLogSource = class'];

describe.each(MAJORS.slice(0, 1))('guard without lockout flags on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';

  beforeAll(async () => {
    cl = await startCluster(major);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-guard-lazy-'));
    await fs.writeFile(
      path.join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(path.join(dir, 'loaded'))} + process.pid, url + '\\n');
  return next(url, context);
}\n`,
    );
    await fs.writeFile(
      path.join(dir, 'register.mjs'),
      `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`,
    );
  });
  afterAll(async () => {
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** The CLI with `args` until `done` says so (then SIGTERM); the markers found in the modules it loaded. */
  const loadedMarkers = async (args: string[], done: (stderr: string) => boolean): Promise<string[]> => {
    const child = spawn(process.execPath, ['--import', path.join(dir, 'register.mjs'), BIN, ...args], {
      env: { ...BASE_ENV, PGREVOKE_STATE_DIR: await fs.mkdtemp(path.join(dir, 'state-')) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => child.on('close', resolve));
    await until(
      () => done(stderr),
      15_000,
      () => `the guard\n${stderr}`,
    );
    child.kill('SIGTERM');
    await exited;
    const urls = (await fs.readFile(path.join(dir, `loaded${child.pid}`), 'utf8')).split('\n').filter((u) => u.startsWith('file:'));
    expect(urls.some((u) => u.includes('/dist/bundle/guard-'))).toBe(true);
    const found = new Set<string>();
    for (const u of urls) {
      const text = await fs.readFile(fileURLToPath(u), 'utf8').catch(() => '');
      for (const m of MARKERS) if (text.includes(m)) found.add(m);
    }
    return [...found].sort();
  };

  it('a guard without --lockout-after or --ban-address-after loads neither; with one, it loads them', async () => {
    const connected = (s: string) => /connected as/.test(s);
    expect(await loadedMarkers(['guard', '--dsn', cl.dsn(), '--on-membership-revoked'], connected)).toEqual([]);
    expect(await loadedMarkers(['guard', '--dsn', cl.dsn(), '--once'], (s) => /node checked/.test(s))).toEqual([]);
    const withLockout = await loadedMarkers(['guard', '--dsn', cl.dsn(), '--lockout-after', '3'], connected);
    expect(withLockout).toEqual(['FileLogSource = class', 'LockoutEngine = class', 'SqlLogSource = class']);
  });
});
