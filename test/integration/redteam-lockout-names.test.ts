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
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockoutEngine } from '../../src/lockout/engine.js';
import { blockRules } from '../../src/lockout/hba-block.js';
import { readLockouts } from '../../src/lockout/store.js';
import type { LockoutClient, LockoutNode, LockoutPolicy } from '../../src/lockout/types.js';
import { connect } from '../../src/pg/connect.js';
import { nodeLabel, resolveConnParams } from '../../src/pg/conninfo.js';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, pollFor } from '../helpers/serverlog.js';

// a hardened file: named roles from named places, everything else refused
const HBA =
  [
    'local all all trust',
    'host all postgres 127.0.0.1/32 scram-sha-256',
    'host all alice 127.0.0.0/8 scram-sha-256',
    'host all all 0.0.0.0/0 reject',
  ].join('\n') + '\n';

const POLICY: LockoutPolicy = {
  after: 3,
  windowMs: 600_000,
  forMs: 900_000,
  by: 'address',
  banAddressAfter: null,
  excludeRoles: [],
  excludeAddresses: [],
};

describe.each(MAJORS)('red team: lockouts of the attacker’s making, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-redteam-names-'));

  const engine = (env: NodeJS.ProcessEnv, policy: Partial<LockoutPolicy> = {}) =>
    new LockoutEngine({ policy: { ...POLICY, ...policy }, nodes: [node], env, operator: { osUser: 'test', host: 'here' } });

  beforeAll(async () => {
    cl = await startCluster(major, {
      logging_collector: 'on',
      log_destination: `'csvlog'`,
      log_filename: `'postgresql-%Y-%m-%d_%H%M%S'`,
    });
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw-alice'`);
    const params = resolveConnParams({ dsn: cl.dsn() }, {});
    client = await connect(params);
    node = { name: nodeLabel(params), params, client: () => client as LockoutClient, hbaFile: cl.hbaFile };
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('invented user names from one address lock no pair and write no pg_hba.conf line (docs/lockouts.md: "invented names must not fill pg_hba.conf")', async () => {
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(tmp, 'state-')) };
    const source = new SqlLogSource(client, { format: 'csvlog' });
    await source.poll();
    const ghosts = ['ghost_1', 'ghost_2', 'ghost_3', 'ghost_4', 'ghost_5'];
    for (const user of ghosts) for (let i = 0; i < 3; i++) expect(await attempt(cl, { user, from: '127.0.0.66' })).toBe('28000');
    const got = await pollFor(source, ghosts.length * 3);
    // what the server logs for them: its reject line, not "role does not exist"
    expect(new Set(got.map((f) => f.kind))).toEqual(new Set(['hba_reject']));
    const e = engine(env);
    await e.ingest(got);
    await e.enforce(new Date());
    const locked = (await readLockouts(env)).map((l) => l.role);
    const lines = blockRules(readFileSync(cl.hbaFile, 'utf8')).map((r) => r.line);
    expect({ locked, lines }).toEqual({ locked: [], lines: [] });
  });
});
