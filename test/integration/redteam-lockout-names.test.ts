// Red team (issue 16): an unauthenticated client, knowing what the lockout engine does, fills
// pg_hba.conf with lockouts of roles that do not exist. Under a catch-all `reject` line (or with no
// pg_hba.conf entry for the name) the server logs `pg_hba.conf rejects connection ...` / `no
// pg_hba.conf entry ...` for an invented name, never "role does not exist", so only the engine's
// own look-up in pg_roles can tell (docs/lockouts.md: invented names must not fill pg_hba.conf).
// Real failed logins, read back by the real log reader (csvlog over SQL), the real engine, the
// server's own pg_hba.conf.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockRules } from '../../src/lockout/hba-block.js';
import { readLockouts } from '../../src/lockout/store.js';
import type { LockoutNode } from '../../src/lockout/types.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { lockoutEngine, redTeamStart, startRedTeam } from '../helpers/lockout.js';
import { attempt, pollFor } from '../helpers/serverlog.js';

describe.each(MAJORS)('red team: lockouts of the attacker’s making, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-redteam-names-'));

  beforeAll(async () => {
    ({ cl, client, node } = await startRedTeam(major));
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('invented user names from one address lock no pair and write no pg_hba.conf line (docs/lockouts.md: "invented names must not fill pg_hba.conf")', async () => {
    const { env, source } = await redTeamStart(cl, client, tmp);
    const ghosts = ['ghost_1', 'ghost_2', 'ghost_3', 'ghost_4', 'ghost_5'];
    for (const user of ghosts) for (let i = 0; i < 3; i++) expect(await attempt(cl, { user, from: '127.0.0.66' })).toBe('28000');
    const got = await pollFor(source, ghosts.length * 3);
    // what the server logs for them: its reject line, not "role does not exist"
    expect(new Set(got.map((f) => f.kind))).toEqual(new Set(['hba_reject']));
    const e = lockoutEngine([node], env);
    await e.ingest(got);
    await e.enforce(new Date());
    const locked = (await readLockouts(env)).map((l) => l.role);
    const lines = blockRules(readFileSync(cl.hbaFile, 'utf8')).map((r) => r.line);
    expect({ locked, lines }).toEqual({ locked: [], lines: [] });
  });
});
