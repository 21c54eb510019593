// pg 8's import asks whether it runs in a Cloudflare Worker; on Node 20, which has no navigator, the
// question loads Node's bundled undici (src/pg/navigator-preset.ts). The shipped CLI (bin/pgrevoke.js,
// the bundle) runs cutoff's path with a probe preloaded that says at exit whether undici was loaded
// and what navigator is left: the same as in a bare `node -e 0` (none on Node 20, Node's own on 21+).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/undici-probe.mjs');
const probed = { NODE_OPTIONS: `--import=${PROBE}` };
const probeLine = (stderr: string) => stderr.split('\n').find((l) => l.startsWith('undici-probe: '));

describe('pg loads without undici (navigator preset)', () => {
  let cl: TestCluster;
  let bare = '';
  beforeAll(async () => {
    bare = probeLine(spawnSync(process.execPath, ['--import', PROBE, '-e', '0'], { encoding: 'utf8' }).stderr) ?? 'no probe line';
    cl = await startCluster(MAJORS[MAJORS.length - 1]!);
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'pw'`);
  });
  afterAll(async () => cl?.destroyAll());

  it('cutoff --dry-run and a real contain-only cutoff: pg connects, undici never loads, no navigator is left behind', async () => {
    const dry = await runCli(['cutoff', 'mallory', '--dry-run', '--json', '--dsn', cl.dsn()], probed);
    expect(dry.code, dry.stderr).toBe(0);
    expect(probeLine(dry.stderr)).toBe(bare);

    const real = await runCli(['cutoff', 'mallory', '--yes', '--json', '--playbook', 'contain-only', '--dsn', cl.dsn()], probed);
    expect(real.code, real.stderr).toBe(0);
    expect(probeLine(real.stderr)).toBe(bare);
    expect((await cl.sql<{ rolcanlogin: boolean }>(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'mallory'`))[0]).toEqual({
      rolcanlogin: false,
    });
  });

  it('the probe sees undici when pg loads with no navigator (what the preset avoids)', () => {
    expect(bare).toMatch(/^undici-probe: undici not loaded; navigator /);
    // delete: Node 21+ has a navigator of its own, and pg then never asks for a Response
    const r = spawnSync(process.execPath, ['--import', PROBE, '-e', "delete globalThis.navigator; require('pg')"], { encoding: 'utf8' });
    expect(probeLine(r.stderr)).toBe('undici-probe: undici loaded; navigator undefined');
  });
});
